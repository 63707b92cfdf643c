import { event, hrKey, identityStream, keyString, ManualClock } from '@idlc/domain';
import { Engine } from '@idlc/engine';
import { SqliteDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DAY, sagaConfig } from './helpers';

/**
 * Many deadlines falling due at the same instant are all processed, each exactly once.
 * 10,000 identities by default (a few seconds); SAGA_SCALE_IDENTITIES=100000 for the full run.
 */
const N = Number(process.env.SAGA_SCALE_IDENTITIES ?? 10_000);

describe(`deadline scheduler at scale (${N.toLocaleString('en')} identities due together)`, () => {
  let dir: string;
  let engine: Engine;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-saga-scale-'));
  });
  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fires every due deadline once and records the rate', async () => {
    const start = Date.parse('2026-01-05T09:00:00.000Z');
    const clock = new ManualClock(start);
    engine = await Engine.open({
      clock,
      config: sagaConfig(dir),
    });
    // Contractors provisioned by HR at the same instant: all disabled for inactivity 30 days later.
    // Appended straight to the store (what the hire command would append), to build them fast.
    const t0 = performance.now();
    const ids = Array.from({ length: N }, () => randomUUID());
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(
        ids.slice(i, i + 1000).map((id, k) => {
          const employeeId = `S${i + k}`;
          const attributes = { givenName: 'Load', familyName: `Test ${i + k}`, department: 'Support', employmentType: 'contractor' };
          const events = [
            event('IdentityHired', { employeeId, effectiveAt: '2026-01-05T00:00:00.000Z', attributes }),
            event('ExternalKeyLinked', { key: hrKey(employeeId) }),
            event('AccountProvisioned', { source: 'hr', effectiveAt: '2026-01-05T00:00:00.000Z' }),
            event('RoleGranted', { role: 'employee-basic', source: { kind: 'birthright', ruleId: 'default' } }),
          ];
          return engine.store.append(
            identityStream(id),
            events.map((e) => ({ type: e.type, version: e.version, data: e.data as any, metadata: { source: 'test' } })),
            'no_stream',
            { claims: [keyString(hrKey(employeeId))] },
          );
        }),
      );
    }
    const built = performance.now();
    await engine.projections.runToHead();
    const projected = performance.now();
    const db = engine.readDb as SqliteDatabase;
    const scheduled = await db.get<{ n: number; min: number; max: number }>('SELECT COUNT(*) AS n, MIN(due_at) AS min, MAX(due_at) AS max FROM deadlines');
    expect(scheduled).toEqual({ n: N, min: start + 30 * DAY, max: start + 30 * DAY });

    clock.set(start + 30 * DAY);
    const commitsBefore = db.commitCount;
    const keyLookupsBefore = engine.dataKeys.lookups;
    let streamReads = 0;
    const readStream = engine.store.readStream.bind(engine.store);
    engine.store.readStream = (...a) => (streamReads++, readStream(...a));
    const f0 = performance.now();
    const fired = await engine.scheduler.runDue();
    const ms = performance.now() - f0;
    expect(fired).toBe(N);
    // The commands in flight share group commits: one per deadline would be N and more.
    const commits = db.commitCount - commitsBefore;
    expect(commits).toBeLessThan(N / 16);
    // Cold aggregates: loaded for each claimed batch at once (the repository's preload), with their
    // data keys' statuses (one query per 500), not stream by stream as each command ran.
    expect(streamReads).toBe(0);
    expect(engine.dataKeys.lookups - keyLookupsBefore).toBeLessThanOrEqual(Math.ceil(N / 500));
    expect([engine.scheduler.due, engine.scheduler.fired, engine.scheduler.noops, engine.scheduler.failures]).toEqual([N, N, 0, 0]);
    const perIdentity = await db.all<{ n: number; c: number }>(
      `SELECT n, COUNT(*) AS c FROM (SELECT stream_id, COUNT(*) AS n FROM events WHERE type = 'AccountDisabled' GROUP BY stream_id) GROUP BY n`,
    );
    expect(perIdentity).toEqual([{ n: 1, c: N }]);
    expect(await db.get('SELECT COUNT(*) AS n FROM deadlines')).toEqual({ n: 0 });
    expect(await engine.scheduler.runDue()).toBe(0);
    await engine.projections.runToHead();
    expect(await db.get(`SELECT COUNT(*) AS n FROM identities WHERE account_status = 'disabled'`)).toEqual({ n: N });

    const rate = Math.round(N / (ms / 1000));
    process.stdout.write(
      `[bench] deadline scheduler (SQLite): ${N} due deadlines fired in ${Math.round(ms)} ms = ${rate}/s ` +
        `in ${commits} commits (built ${Math.round(built - t0)} ms, projected ${Math.round(projected - built)} ms)\n`,
    );
  }, 600_000);
});
