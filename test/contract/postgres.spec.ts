import { ManualClock } from '@idlc/domain';
import {
  EventStoreUnavailableError,
  EventToAppend,
  KeyAlreadyClaimedError,
  PostgresEventStore,
  PostgresEventStoreOptions,
  StoredEvent,
  WrongExpectedVersionError,
} from '@idlc/event-store';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { serviceEnv } from '../support/services';
import { eventStoreContract } from './event-store.contract';

const url = serviceEnv('PostgreSQL', 'DATABASE_URL');

const ev = (type: string, data: Record<string, unknown> = {}): EventToAppend => ({ type, version: 1, data, metadata: { source: 'test' } });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fresh schema per test; everything opened on it is closed and the schema dropped in cleanup(). */
class Scope {
  readonly schema = `ct_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  readonly clock = new ManualClock();
  private readonly dbs: PostgresDatabase[] = [];
  private readonly stores: PostgresEventStore[] = [];

  constructor(private readonly admin: PostgresDatabase) {}

  async create(): Promise<this> {
    await this.admin.exec(`CREATE SCHEMA ${this.schema}`);
    return this;
  }

  /** A pool of its own, as another process would have. */
  database(max = 10): PostgresDatabase {
    const db = new PostgresDatabase({ connectionString: url!, schema: this.schema, max });
    this.dbs.push(db);
    return db;
  }

  async open(options: PostgresEventStoreOptions = {}, max = 10): Promise<PostgresEventStore> {
    const store = await PostgresEventStore.open(this.database(max), this.clock, options);
    this.stores.push(store);
    return store;
  }

  async cleanup(): Promise<void> {
    for (const s of this.stores) await s.close();
    for (const d of this.dbs) await d.close();
    await this.admin.exec(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }
}

const describePg = url ? describe : describe.skip;

describePg('postgres event store', () => {
  let admin: PostgresDatabase;
  const scopes: Scope[] = [];
  const scope = async () => {
    const s = await new Scope(admin).create();
    scopes.push(s);
    return s;
  };

  beforeAll(() => {
    admin = new PostgresDatabase({ connectionString: url!, max: 4 });
  });
  afterEach(async () => {
    while (scopes.length) await scopes.pop()!.cleanup();
  });
  afterAll(async () => {
    await admin?.close();
  });

  eventStoreContract('postgres', async () => {
    const s = await new Scope(admin).create();
    const store = await s.open();
    return { store, clock: s.clock, cleanup: () => s.cleanup() };
  });

  describe('late-commit gap', () => {
    it('never reads past a lower position whose transaction is still open', async () => {
      const s = await scope();
      let releaseHeld!: () => void;
      const held = new Promise<void>((r) => (releaseHeld = r));
      let holdNext = false;
      const store = await s.open({
        beforeCommit: async () => {
          if (holdNext) {
            holdNext = false;
            await held;
          }
        },
      });
      const other = await s.open({ headLockTimeoutMs: 200 });
      await store.append('seed', [ev('Seed')], 'no_stream');
      holdNext = true;
      try {
        const seen: StoredEvent[] = [];
        const sub = other.subscribeToAll(async (b) => void seen.push(...b), { fromPosition: 0, batchSize: 1 });
        await sub.caughtUp();

        // A draws the lower position and stays open; B draws a higher one and commits.
        const a = store.append('late', [ev('Late')], 'no_stream');
        await waitFor(async () => (await rawPositions(s)).length === 1 && holdNext === false);
        const b = await store.append('early', [ev('Early')], 'no_stream');
        const visible = await rawPositions(s);
        expect(visible).toContain(b.positions[0]);
        expect(visible).toHaveLength(2); // seed + B: A's lower position is a hole right now
        const seedPos = visible[0];

        // A reader with a short lock timeout settles for the last safe head: it does not skip A.
        expect(await other.headPosition()).toBe(seedPos);
        expect((await other.readAll({ fromPosition: 0 })).map((e) => e.type)).toEqual(['Seed']);
        await sleep(300);
        expect(seen.map((e) => e.type)).toEqual(['Seed']);

        // A reader that waits is released once A commits and then sees both, in position order.
        const head = store.headPosition();
        await sleep(50);
        releaseHeld();
        const ra = await a;
        expect(ra.positions[0]).toBeLessThan(b.positions[0]);
        expect(await head).toBe(b.positions[0]);
        expect((await store.readAll({ fromPosition: seedPos })).map((e) => e.type)).toEqual(['Late', 'Early']);
        await waitFor(async () => seen.length === 3);
        await sub.stop();
        expect(seen.map((e) => e.type)).toEqual(['Seed', 'Late', 'Early']);
      } finally {
        releaseHeld(); // never leave the transaction open: the pool could not close
      }
    });

    it('delivers every event exactly once, in order, to a subscriber while writers commit late', async () => {
      const s = await scope();
      const lateCommit = async () => {
        if (Math.random() < 0.35) await sleep(Math.random() * 40);
      };
      // Two instances with their own pools, as two processes: both write, the first also reads.
      const a = await s.open({ beforeCommit: lateCommit }, 24);
      const b = await s.open({ beforeCommit: lateCommit }, 24);
      const seen: StoredEvent[] = [];
      const sub = a.subscribeToAll(
        async (batch) => {
          seen.push(...batch);
          if (Math.random() < 0.2) await sleep(2);
        },
        { fromPosition: 0, batchSize: 16 },
      );

      // A naive reader ("everything after the last position I saw") shows the gap is real here.
      const naiveSeen = new Set<number>();
      let naiveStop = false;
      const naive = (async () => {
        let last = 0;
        while (!naiveStop) {
          for (const p of await rawPositions(s, last)) {
            naiveSeen.add(p);
            last = Math.max(last, p);
          }
          await sleep(1);
        }
      })();

      const writers = 24;
      const appendsPerWriter = 15;
      const positions: number[] = [];
      const started = Date.now();
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const store = w % 2 === 0 ? a : b;
          for (let i = 0; i < appendsPerWriter; i++) {
            const stream = i % 3 === 0 ? `hot-${i % 2}` : `writer-${w}`;
            const n = 1 + (i % 3);
            const r = await store.append(
              stream,
              Array.from({ length: n }, (_, k) => ev('Written', { w, i, k })),
              'any',
            );
            positions.push(...r.positions);
          }
        }),
      );
      const writeMs = Date.now() - started;
      await sub.caughtUp();
      await sub.stop();
      naiveStop = true;
      await naive;

      const total = writers * appendsPerWriter * 2; // n cycles 1,2,3 over 15 appends: 30 events per writer
      expect(positions).toHaveLength(total);
      expect(seen).toHaveLength(total);
      const seenPositions = seen.map((e) => e.position);
      for (let i = 1; i < seenPositions.length; i++) expect(seenPositions[i]).toBeGreaterThan(seenPositions[i - 1]);
      expect(new Set(seen.map((e) => e.id)).size).toBe(total);
      expect([...seenPositions].sort((x, y) => x - y)).toEqual([...positions].sort((x, y) => x - y));
      // Per stream, revisions arrive contiguous and in order.
      const revs = new Map<string, number>();
      for (const e of seen) {
        expect(e.revision).toBe((revs.get(e.streamId) ?? -1) + 1);
        revs.set(e.streamId, e.revision);
      }
      const naiveMissed = positions.filter((p) => !naiveSeen.has(p)).length;
      // eslint-disable-next-line no-console
      console.log(`late-commit: ${total} events in ${writeMs} ms; a naive reader skipped ${naiveMissed}, the subscriber none`);
      expect(naiveMissed).toBeGreaterThan(0);
    }, 60_000);
  });

  describe('two instances (two pools, as two processes)', () => {
    it('lets exactly one of the racing writers on one stream win', async () => {
      const s = await scope();
      const one = await s.open();
      const two = await s.open();
      await one.append('hot', [ev('Created')], 'no_stream');
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? one : two).append('hot', [ev('Raced', { i })], 0).then(
            () => 'won',
            (e) => (e instanceof WrongExpectedVersionError ? 'lost' : Promise.reject(e)),
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
      expect(await two.readStream('hot')).toHaveLength(2);

      const creators = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? one : two).append('fresh', [ev('Created', { i })], 'no_stream').then(
            () => 'won',
            (e) => (e instanceof WrongExpectedVersionError ? 'lost' : Promise.reject(e)),
          ),
        ),
      );
      expect(creators.filter((o) => o === 'won')).toHaveLength(1);

      // 'any' appends from both never conflict and get contiguous revisions.
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).append('shared', [ev('Any', { i })], 'any')));
      expect((await one.readStream('shared')).map((e) => e.revision)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    // A keyless append (one round trip) races an append to another stream recording the same
    // idempotency key K. That append (B) stays open before COMMIT while A reads no K; then either
    // A's insert statement starts only after B has committed (held back by a SHARE lock on the key
    // table queued behind B: the insert finds K recorded and inserts nothing), or it starts while B
    // is still open (its key insert waits for B and fails on the unique index). Either way A is
    // answered with B's recorded result and writes nothing.
    it.each([
      ['after the other commits: the insert inserts nothing', true],
      ['while the other is open: the key insert fails on the unique index', false],
    ])("answers a keyless append from the recorded result when another stream's append records the same idempotency key between its read and its insert (%s)", async (_case, shareLock) => {
      const s = await scope();
      let releaseB!: () => void;
      const held = new Promise<void>((r) => (releaseB = r));
      let inHook = false;
      const holder = await s.open({
        beforeCommit: async ({ streamId }) => {
          if (streamId !== 'b') return;
          inHook = true;
          await held;
        },
      });
      const racer = await s.open();
      const locker = s.database(1);
      const waiting = async (on: string) =>
        Number((await admin.get<{ n: string }>(`SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND ${on}`))!.n);
      const onKeyTable = `relation = '${s.schema}.idempotency_keys'::regclass`;
      try {
        const b = holder.append('b', [ev('B')], 'no_stream', { idempotencyKey: 'K' });
        await waitFor(async () => inHook);
        let share: Promise<unknown> = Promise.resolve();
        if (shareLock) {
          share = locker.transaction((tx) => tx.run('LOCK TABLE idempotency_keys IN SHARE MODE'));
          await waitFor(async () => (await waiting(onKeyTable)) === 1);
        }
        const a = racer.append('a', [ev('A')], 'no_stream', { idempotencyKey: 'K' });
        // A has read (no K) and its insert waits: on the queued lock, or on B's uncommitted key.
        await waitFor(async () => (await waiting(shareLock ? onKeyTable : `locktype = 'transactionid'`)) === (shareLock ? 2 : 1));
        releaseB();
        const [rb, , ra] = await Promise.all([b, share, a]);
        expect(rb.duplicate).toBe(false);
        expect(ra).toEqual({ ...rb, duplicate: true });
        expect(await racer.readStream('a')).toEqual([]);
        expect((await racer.readStream('b')).map((e) => e.type)).toEqual(['B']);
      } finally {
        releaseB();
      }
    });

    it('lets exactly one of the new streams racing for one unique key claim it, and writes nothing for the others', async () => {
      const s = await scope();
      const one = await s.open();
      const two = await s.open();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? one : two).append(`jit-${i}`, [ev('Provisioned')], 'no_stream', { claims: ['oidc:sub-1', `mail:${i}`] }).then(
            () => `jit-${i}`,
            (e) => (e instanceof KeyAlreadyClaimedError ? null : Promise.reject(e)),
          ),
        ),
      );
      const winners = results.filter((r): r is string => r !== null);
      expect(winners).toHaveLength(1);
      expect(await one.lookupKey('oidc:sub-1')).toBe(winners[0]);
      for (let i = 0; i < 10; i++) {
        const mine = `jit-${i}`;
        expect(await two.readStream(mine)).toHaveLength(mine === winners[0] ? 1 : 0);
        expect(await two.lookupKey(`mail:${i}`)).toBe(mine === winners[0] ? mine : null);
      }
    });

    it('wakes a subscriber of one instance on a commit of the other, and survives a dropped LISTEN connection', async () => {
      const s = await scope();
      // A long idle wait: only a notification can deliver within the deadlines below.
      const reader = await s.open({ idleWaitMs: 60_000 });
      const writer = await s.open();
      const seen: StoredEvent[] = [];
      const sub = reader.subscribeToAll(async (b) => void seen.push(...b), { fromPosition: 0 });
      await waitFor(async () => reader.listening);
      await sub.caughtUp();
      await writer.append('x', [ev('One')], 'no_stream');
      await waitFor(async () => seen.length === 1, 3000);

      const pid = reader.listenerBackendPid;
      expect(pid).not.toBeNull();
      await s.database(1).get('SELECT pg_terminate_backend(?)', [pid]);
      await waitFor(async () => reader.listening && reader.listenerBackendPid !== pid, 5000);
      await writer.append('x', [ev('Two')], 0);
      await waitFor(async () => seen.length === 2, 3000);
      await sub.stop();
      expect(seen.map((e) => e.type)).toEqual(['One', 'Two']);
    });
  });

  describe('subscriptions', () => {
    it('catches up a prefixed subscription when the newest events belong to other streams', async () => {
      const s = await scope();
      const store = await s.open();
      await store.append('user-1', [ev('U')], 'no_stream');
      await store.append('group-1', [ev('G')], 'no_stream');
      const seen: StoredEvent[] = [];
      const sub = store.subscribeToAll(async (b) => void seen.push(...b), { fromPosition: 0, streamPrefix: 'user-' });
      await sub.caughtUp();
      expect(seen.map((e) => e.streamId)).toEqual(['user-1']);
      await store.append('user-2', [ev('U')], 'no_stream');
      await store.append('group-2', [ev('G')], 'no_stream');
      await sub.caughtUp();
      await sub.stop();
      expect(seen.map((e) => e.streamId)).toEqual(['user-1', 'user-2']);
    });

    it('is stopped by close()', async () => {
      const s = await scope();
      const store = await s.open();
      const sub = store.subscribeToAll(async () => undefined, { fromPosition: 0 });
      await sub.caughtUp();
      await store.close();
      await sub.stop(); // already stopped: resolves at once
      expect(store.listening).toBe(false);
    });
  });

  describe('connection failures', () => {
    /** A store whose first append transaction loses its connection just before COMMIT. */
    const storeLosingFirstCommit = async () => {
      const s = await scope();
      const killer = s.database(1);
      let kill = true;
      return s.open({
        beforeCommit: async ({ backendPid }) => {
          if (!kill) return;
          kill = false;
          await killer.get('SELECT pg_terminate_backend(?)', [backendPid]);
          await sleep(50); // the client hears of it while idle in the transaction
        },
      });
    };

    it('fails an append whose connection drops before COMMIT as unavailable, writes nothing, and keeps working', async () => {
      const store = await storeLosingFirstCommit();
      await expect(store.append('a', [ev('Lost')], 'no_stream', { claims: ['k'] })).rejects.toBeInstanceOf(EventStoreUnavailableError);
      expect(await store.readStream('a')).toEqual([]);
      expect(await store.lookupKey('k')).toBeNull();
      await store.append('a', [ev('Kept')], 'no_stream', { claims: ['k'] });
      expect((await store.readAll()).map((e) => e.type)).toEqual(['Kept']);
    });

    it('fails a keyless append (the one-round-trip path) whose connection drops before COMMIT as unavailable, writes nothing, and keeps working', async () => {
      const store = await storeLosingFirstCommit();
      await expect(store.append('a', [ev('Lost')], 'no_stream', { idempotencyKey: 'i' })).rejects.toBeInstanceOf(EventStoreUnavailableError);
      expect(await store.readStream('a')).toEqual([]);
      expect(await store.lookupIdempotencyKey('i')).toBeNull();
      const kept = await store.append('a', [ev('Kept')], 'no_stream', { idempotencyKey: 'i' });
      expect(await store.append('a', [ev('Kept')], 'no_stream', { idempotencyKey: 'i' })).toMatchObject({ duplicate: true, positions: kept.positions });
      expect((await store.readAll()).map((e) => e.type)).toEqual(['Kept']);
    });

    it('fails an appendMany whose connection drops before COMMIT as unavailable and writes nothing of the batch', async () => {
      const store = await storeLosingFirstCommit();
      const batch = [
        { streamId: 'a', events: [ev('A')], expected: 'no_stream' as const, options: { claims: ['ka'], idempotencyKey: 'ia' } },
        { streamId: 'b', events: [ev('B1'), ev('B2')], expected: 'no_stream' as const, options: { idempotencyKey: 'ib' } },
      ];
      await expect(store.appendMany(batch)).rejects.toBeInstanceOf(EventStoreUnavailableError);
      expect(await store.readAll()).toEqual([]);
      expect([await store.lookupKey('ka'), await store.lookupIdempotencyKey('ia'), await store.lookupIdempotencyKey('ib')]).toEqual([null, null, null]);
      // The caller's retry of the same batch then stores all of it, once.
      const retried = await store.appendMany(batch);
      expect(retried.map((r) => r.status === 'fulfilled' && r.value.duplicate)).toEqual([false, false]);
      expect((await store.readAll()).map((e) => e.type)).toEqual(['A', 'B1', 'B2']);
      expect(await store.lookupKey('ka')).toBe('a');
    });

    it('PostgresDatabase.transaction survives a connection dropped mid-transaction', async () => {
      const s = await scope();
      const db = s.database(2);
      const killer = s.database(1);
      await db.exec('CREATE TABLE t (n INTEGER)');
      await expect(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO t (n) VALUES (?)', [1]);
          const { pid } = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!;
          await killer.get('SELECT pg_terminate_backend(?)', [pid]);
          await sleep(50);
          await tx.run('INSERT INTO t (n) VALUES (?)', [2]);
        }),
      ).rejects.toThrow();
      await db.transaction(async (tx) => tx.run('INSERT INTO t (n) VALUES (?) -- a comment with a ? in it', [3]));
      expect(await db.all('SELECT n FROM t')).toEqual([{ n: 3 }]);
    });
  });

  describe('migration', () => {
    it('is idempotent: opening twice keeps the data, and concurrent opens do not collide', async () => {
      const s = await scope();
      const first = await s.open();
      await first.append('keep', [ev('Kept')], 'no_stream', { claims: ['k'], idempotencyKey: 'i' });
      await first.saveSnapshot({ streamId: 'keep', revision: 0, schemaVersion: 1, state: { ok: true } });
      const second = await s.open();
      expect((await second.readStream('keep')).map((e) => e.type)).toEqual(['Kept']);
      expect(await second.lookupKey('k')).toBe('keep');
      expect(await second.lookupIdempotencyKey('i')).not.toBeNull();
      expect(await second.loadSnapshot('keep')).toMatchObject({ revision: 0, state: { ok: true } });

      // A schema that does not exist yet, opened by several "processes" at once.
      const fresh = new Scope(admin);
      scopes.push(fresh);
      const stores = await Promise.all(Array.from({ length: 6 }, () => fresh.open({}, 2)));
      await stores[0].append('a', [ev('A')], 'no_stream');
      expect(await stores[5].readStream('a')).toHaveLength(1);
      const tables = await admin.all<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
        [fresh.schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual(['events', 'idempotency_keys', 'snapshots', 'unique_keys']);
    });
  });

  describe('performance', () => {
    it('appends without key claims or releases in one round trip: the revision and idempotency checks are conditions of the insert', async () => {
      const s = await scope();
      const store = await s.open();
      await store.append('seed', [ev('Seed')], 'no_stream');
      const pg = await import('pg');
      const sent: string[] = [];
      const original = pg.Client.prototype.query;
      const query = jest.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: unknown, ...args: any[]) {
        sent.push(typeof args[0] === 'string' ? args[0] : args[0]?.text);
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as any);
      try {
        const first = await store.append('seed', [ev('A'), ev('B')], 0, { idempotencyKey: 'once' });
        expect(sent).toHaveLength(1);
        // Each way of not inserting is answered from the same single query.
        expect(await store.append('seed', [ev('A'), ev('B')], 0, { idempotencyKey: 'once' })).toMatchObject({ duplicate: true, positions: first.positions });
        await expect(store.append('seed', [ev('C')], 0)).rejects.toMatchObject({ actual: 2 });
        await expect(store.append('fresh', [ev('C')], 'stream_exists')).rejects.toBeInstanceOf(WrongExpectedVersionError);
        expect(sent).toHaveLength(4);
      } finally {
        query.mockRestore();
      }
      expect((await store.readStream('seed')).map((e) => e.type)).toEqual(['Seed', 'A', 'B']);
      expect(await store.readStream('fresh')).toEqual([]);
    });

    it('appends 100-event batches with one multi-row insert', async () => {
      const s = await scope();
      const store = await s.open();
      const started = Date.now();
      for (let b = 0; b < 20; b++) {
        await store.append(
          `bulk-${b}`,
          Array.from({ length: 100 }, (_, i) => ev('Bulk', { b, i })),
          'no_stream',
        );
      }
      const ms = Date.now() - started;
      // eslint-disable-next-line no-console
      console.log(`postgres: 20 x 100-event appends in ${ms} ms`);
      expect(await store.headPosition()).toBe(2000);
      expect(ms).toBeLessThan(10_000);
    });
  });

  /** Positions visible to a plain read, no safe head: what a naive reader would see. */
  async function rawPositions(s: Scope, after = 0): Promise<number[]> {
    const rows = await admin.all<{ position: number }>(
      `SELECT position FROM ${s.schema}.events WHERE position > ? ORDER BY position`,
      [after],
    );
    return rows.map((r) => Number(r.position));
  }
});

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}
