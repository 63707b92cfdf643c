import { ManualClock } from '@idlc/domain';
import { KeyAlreadyClaimedError, SqliteEventStore, WrongExpectedVersionError } from '@idlc/event-store';
import { SqliteDatabase } from '@idlc/sql';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ev = (type: string) => ({ type, version: 1, data: { type } });

describe('SQLite group commit: appends queued behind the writer commit together, each all-or-nothing', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteEventStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-group-'));
    db = new SqliteDatabase({ filename: join(dir, 'events.db') });
    store = await SqliteEventStore.open(db, new ManualClock());
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one commit for a burst; a conflict, a taken key and a repeated idempotency key fail alone', async () => {
    await store.append('s-taken', [ev('Seed')], 'no_stream', { claims: ['key:taken'] });
    await store.append('s-hot', [ev('Seed')], 'no_stream');
    // The writer's transactions (each a commit unless it threw); an append's savepoint is not one.
    const before = db.commitCount;
    const results = await Promise.allSettled([
      store.append('s-a', [ev('A1'), ev('A2')], 'no_stream'),
      store.append('s-hot', [ev('Stale')], 'no_stream'), // conflict: the stream exists
      store.append('s-b', [ev('B1')], 'no_stream', { claims: ['key:taken'] }), // claimed by s-taken
      store.append('s-c', [ev('C1')], 'no_stream', { idempotencyKey: 'req-1', claims: ['key:c'] }),
      store.append('s-c', [ev('C1')], 'no_stream', { idempotencyKey: 'req-1', claims: ['key:c'] }), // a retry in the same burst
      store.append('s-d', [ev('D1')], 'no_stream'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedVersionError);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(KeyAlreadyClaimedError);
    const [a, , , c, cRetry, d] = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    expect(cRetry).toMatchObject({ streamId: 's-c', positions: c!.positions, nextExpectedRevision: 0, duplicate: true });
    expect([a!.positions, c!.positions, d!.positions]).toEqual([[3, 4], [5], [6]]);
    expect(db.commitCount - before).toBe(1);
    // Nothing of the failed appends is stored, not even the claim or a partial stream.
    expect((await store.readStream('s-b')).length).toBe(0);
    expect((await store.readStream('s-hot')).map((e) => e.type)).toEqual(['Seed']);
    expect(await store.lookupKey('key:taken')).toBe('s-taken');
    expect(await store.lookupKey('key:c')).toBe('s-c');
    expect(await store.headPosition()).toBe(6);
  });

  it('appends made while a long write holds the writer wait for it and then commit as one', async () => {
    let release!: () => void;
    const held = db.transaction(() => new Promise<void>((r) => (release = r)));
    const waiting = Array.from({ length: 50 }, (_, i) => store.append(`s-${i}`, [ev('E')], 'no_stream'));
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.headPosition()).toBe(0);
    release();
    await held;
    const done = await Promise.all(waiting);
    expect(done.map((r) => r.positions[0])).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('a closed database rejects queued appends instead of leaving them waiting', async () => {
    await db.close();
    await expect(store.append('s-x', [ev('E')], 'no_stream')).rejects.toThrow();
  });
});
