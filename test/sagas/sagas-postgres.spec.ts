import { ManualClock } from '@idlc/domain';
import { DeadlineScheduler, Engine, HrFeedService } from '@idlc/engine';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeIf, serviceEnv } from '../support/services';
import { DAY, hireEvent, sagaConfig } from './helpers';

/**
 * Two engines (as two worker processes would be) on one PostgreSQL schema, each with its own
 * scheduler, racing for the same due deadlines: every action happens exactly once.
 */
const url = serviceEnv('PostgreSQL', 'DATABASE_URL');
const N = 300;
const START = Date.parse('2026-01-05T09:00:00.000Z');

describeIf(url)('deadline schedulers on PostgreSQL', () => {
  let admin: PostgresDatabase;
  let schema: string;
  let dir: string;
  const engines: Engine[] = [];
  let clock: ManualClock;

  const open = async () => {
    const u = new URL(url!);
    u.searchParams.set('options', `-c search_path=${schema}`);
    const engine = await Engine.open({
      clock,
      config: sagaConfig(dir, { EVENT_STORE: 'postgres', DATABASE_URL: u.toString() }),
    });
    engines.push(engine);
    return engine;
  };

  /** N contractors hired through the HR path, projected, all due for the inactivity disable at START + 30 days. */
  async function populate(a: Engine): Promise<string[]> {
    const hr = new HrFeedService(a.commands);
    const results = await hr.applyAll(
      Array.from({ length: N }, (_, i) => hireEvent(`pg-hire-${i}`, `P${i}`, { employmentType: 'contractor' }) as any),
      { source: 'hr-webhook', actor: 'test', correlationId: randomUUID() },
    );
    expect(results.filter((r) => r.status === 'applied')).toHaveLength(N);
    await a.projections.runToHead();
    expect(await a.readDb.get('SELECT COUNT(*)::int AS n, MIN(due_at) AS min, MAX(due_at) AS max FROM deadlines')).toEqual({
      n: N,
      min: START + 30 * DAY,
      max: START + 30 * DAY,
    });
    return results.map((r) => r.identityId!);
  }

  async function disabledPerIdentity(db: PostgresDatabase | Engine['readDb']) {
    return db.all<{ n: number; c: number }>(
      `SELECT n, COUNT(*)::int AS c FROM (SELECT stream_id, COUNT(*)::int AS n FROM events WHERE type = 'AccountDisabled' GROUP BY stream_id) x GROUP BY n`,
    );
  }

  beforeEach(async () => {
    admin = new PostgresDatabase({ connectionString: url! });
    schema = `saga_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await admin.exec(`CREATE SCHEMA ${schema}`);
    dir = mkdtempSync(join(tmpdir(), 'idlc-saga-pg-'));
    clock = new ManualClock(START);
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two schedulers claiming concurrently (FOR UPDATE SKIP LOCKED) never double-fire', async () => {
    const a = await open();
    const b = await open();
    await populate(a);
    clock.set(START + 30 * DAY);
    const sa = new DeadlineScheduler(a.readDb, a.commands, a.clock, a.policies, undefined, { workerId: 'worker-a', batchSize: 20, concurrency: 4 });
    const sb = new DeadlineScheduler(b.readDb, b.commands, b.clock, b.policies, undefined, { workerId: 'worker-b', batchSize: 20, concurrency: 4 });
    const [fa, fb] = await Promise.all([sa.runDue(), sb.runDue()]);
    process.stdout.write(`[info] PostgreSQL: worker-a fired ${fa}, worker-b fired ${fb} of ${N}\n`);
    expect(fa + fb).toBe(N);
    expect([sa.due + sb.due, sa.noops + sb.noops, sa.failures + sb.failures]).toEqual([N, 0, 0]);
    expect(fa).toBeGreaterThan(0);
    expect(fb).toBeGreaterThan(0);
    expect(await disabledPerIdentity(a.readDb)).toEqual([{ n: 1, c: N }]);
    expect(await a.readDb.get('SELECT COUNT(*)::int AS n FROM deadlines')).toEqual({ n: 0 });
  });

  it('concurrent claims take disjoint rows, never more than their limit, until every due row is claimed', async () => {
    const a = await open();
    await populate(a);
    const due = START + 30 * DAY;
    clock.set(due);
    const schedulers = Array.from({ length: 6 }, (_, i) => new DeadlineScheduler(a.readDb, a.commands, a.clock, a.policies, undefined, { workerId: `claimer-${i}` }));
    const claimed: string[] = [];
    for (let round = 0; round < 10; round++) {
      const batches = await Promise.all(schedulers.map((s) => s.claimDue(due, 23)));
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(23);
      claimed.push(...batches.flat().map((r) => r.identityId));
      if (batches.every((b) => b.length === 0)) break;
    }
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed).toHaveLength(N);
    const holders = await a.readDb.all<{ claimed_by: string; n: number }>('SELECT claimed_by, COUNT(*)::int AS n FROM deadlines GROUP BY claimed_by');
    expect(holders.reduce((sum, h) => sum + h.n, 0)).toBe(N);
    expect(holders.every((h) => h.claimed_by.startsWith('claimer-'))).toBe(true);
  });

  it('even when both hold a claim on the same rows (a lease expired mid-run), each action happens once', async () => {
    const a = await open();
    const b = await open();
    await populate(a);
    const due = START + 30 * DAY;
    clock.set(due);
    const sa = new DeadlineScheduler(a.readDb, a.commands, a.clock, a.policies, undefined, { workerId: 'worker-a', leaseMs: 1000 });
    const sb = new DeadlineScheduler(b.readDb, b.commands, b.clock, b.policies, undefined, { workerId: 'worker-b', leaseMs: 1000 });
    const rowsA = await sa.claimDue(due, N);
    expect(rowsA).toHaveLength(N);
    // Worker a is slow: its lease runs out and worker b claims the very same deadlines.
    expect(await sb.claimDue(due + 1000, N)).toHaveLength(0);
    clock.set(due + 1001);
    const rowsB = await sb.claimDue(due + 1001, N);
    expect(rowsB.map((r) => r.identityId).sort()).toEqual(rowsA.map((r) => r.identityId).sort());

    // b works from the other end, so the two meet on the same identities mid-way.
    const [fa, fb] = await Promise.all([sa.fireClaimed(rowsA), sb.fireClaimed([...rowsB].reverse())]);
    process.stdout.write(`[info] PostgreSQL, same rows claimed twice: worker-a fired ${fa}, worker-b fired ${fb} of ${N}\n`);
    expect(fa + fb).toBe(N);
    expect(sa.noops + sb.noops).toBe(N);
    expect(await disabledPerIdentity(a.readDb)).toEqual([{ n: 1, c: N }]);
    expect(await sa.runDue()).toBe(0);
    expect(await sb.runDue()).toBe(0);
  });

  it('the engine-wired scheduler wakes on its own timer on PostgreSQL', async () => {
    const a = await open();
    const ids = await populate(a);
    a.start();
    clock.set(START + 30 * DAY);
    a.scheduler.wake();
    const deadline = Date.now() + 10_000;
    let rows: { n: number; c: number }[] = [];
    while (Date.now() < deadline) {
      rows = await disabledPerIdentity(a.readDb);
      if (rows.length && rows[0].c === ids.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toEqual([{ n: 1, c: N }]);
  });
});
