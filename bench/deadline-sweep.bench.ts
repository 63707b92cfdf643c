import { event, hrKey, identityStream, keyString, ManualClock } from '@idlc/domain';
import { chainEvents, DUE_ROWS_SQL, Engine, GENESIS_HASH, loadConfig } from '@idlc/engine';
import { newId } from '@idlc/event-store';
import { PostgresDatabase } from '@idlc/sql';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BenchContext, BenchResult, ratio, tempDir, timeIt } from './lib';

const DAY = 86_400_000;

/** Median of `runs` timings of fn, in ms. */
async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) ms.push((await timeIt(fn)).ms);
  ms.sort((a, b) => a - b);
  return Math.round(ms[Math.floor(runs / 2)] * 100) / 100;
}

/**
 * N identities with an inactivity deadline, 1% of them due. The due 1% are real identities
 * (contractors appended straight to the store with their hash chain, then
 * projected into `deadlines`); the 99% not yet due are rows inserted directly into `deadlines` (the
 * scheduler never reads their streams, and building a million streams would take far longer than
 * the run). Measures the scheduler's indexed find query and `scheduler.runDue()`; baselines are raw
 * SQL on an equivalent two-column table in the same database. Runs on SQLite, then on PostgreSQL
 * (its own schema, engine wired as EVENT_STORE=postgres) when DATABASE_URL is set.
 */
export async function deadlineSweepBench(ctx: BenchContext): Promise<BenchResult[]> {
  const out = await sweep(ctx, 'sqlite');
  if (process.env.DATABASE_URL) out.push(...(await sweep(ctx, 'postgres')));
  else ctx.log('deadline-sweep.postgres: skipped (DATABASE_URL not set)');
  return out;
}

async function sweep(ctx: BenchContext, backend: 'sqlite' | 'postgres'): Promise<BenchResult[]> {
  const pg = backend === 'postgres';
  const n = ctx.quick ? 20_000 : 1_000_000;
  const dueCount = n / 100;
  const start = Date.parse('2026-01-05T09:00:00.000Z');
  const clock = new ManualClock(new Date(start));
  const dir = tempDir('deadlines');
  const schema = `bench_${newId().replace(/-/g, '').slice(-12)}`;
  const admin = pg ? new PostgresDatabase({ connectionString: process.env.DATABASE_URL! }) : undefined;
  if (admin) await admin.exec(`CREATE SCHEMA ${schema}`);
  const engine = await Engine.open({
    clock,
    config: loadConfig({
      DATA_DIR: dir,
      BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'),
      LOG_LEVEL: 'silent',
      INACTIVITY_WARNING_DAYS: '0',
      ...(pg ? { EVENT_STORE: 'postgres', READ_MODEL_STORE: 'postgres', DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema } : {}),
    }),
  });
  const db = engine.readDb;

  const t0 = performance.now();
  for (let i = 0; i < dueCount; i += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, dueCount - i) }, (_, k) => {
        const employeeId = `D${i + k}`;
        const attributes = { givenName: 'Due', familyName: `Contractor ${i + k}`, department: 'Support', employmentType: 'contractor' };
        const events = [
          event('IdentityHired', { employeeId, effectiveAt: '2026-01-05T00:00:00.000Z', attributes }),
          event('ExternalKeyLinked', { key: hrKey(employeeId) }),
          event('AccountProvisioned', { source: 'hr', effectiveAt: '2026-01-05T00:00:00.000Z' }),
          event('RoleGranted', { role: 'employee-basic', source: { kind: 'birthright', ruleId: 'default' } }),
        ];
        const stream = identityStream(newId());
        // Hash-chained like every stream the engine writes, so firing reads the head hash from the last event.
        return engine.store.append(
          stream,
          chainEvents(stream, 0, GENESIS_HASH, events, { source: 'bench' }).events,
          'no_stream',
          { claims: [keyString(hrKey(employeeId))] },
        );
      }),
    );
  }
  await engine.projections.runToHead();
  const due = await db.get<{ n: number; action: string }>('SELECT COUNT(*) AS n, MIN(action) AS action FROM deadlines');
  if (Number(due?.n) !== dueCount) throw new Error(`expected ${dueCount} projected deadlines, found ${due?.n}`);
  // Not yet due: spread over the following year, one statement.
  await db.run(
    `${pg ? 'WITH seq(i) AS (SELECT generate_series(0, ?::int))' : 'WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)'}
     INSERT INTO deadlines (identity_id, due_at, action, revision, claimed_by, claimed_until)
     SELECT 'bench-later-' || i, CAST(? AS BIGINT) + (i % 365) * CAST(? AS BIGINT) + i, ?, 4, NULL, NULL FROM seq`,
    [n - dueCount - 1, start + 31 * DAY, DAY, due!.action],
  );
  await db.run('CREATE TABLE bench_raw_deadlines (id TEXT PRIMARY KEY, due_at BIGINT NOT NULL)');
  await db.run('INSERT INTO bench_raw_deadlines SELECT identity_id, due_at FROM deadlines');
  await db.run('CREATE INDEX bench_raw_deadlines_due ON bench_raw_deadlines (due_at)');
  // A table that grew to a million rows over months has been vacuumed and analyzed by autovacuum
  // along the way. Inserted at once, it would have neither: without statistics the planner scans the
  // whole table for the first find, and the vacuum that the insert triggers would run during the
  // timed firing. Both done here, before anything is timed.
  if (pg) await db.run('VACUUM (ANALYZE) deadlines, bench_raw_deadlines');
  const buildMs = performance.now() - t0;
  ctx.log(`  built ${n} deadlines (${dueCount} due) in ${Math.round(buildMs)} ms`);

  clock.set(new Date(start + 30 * DAY));
  const now = clock.now().getTime();
  // The scheduler's find (claimDue's inner SELECT, the same SQL), for all due rows and for one claim batch.
  const findAll = () => db.all(DUE_ROWS_SQL, [now, now]);
  const findBatch = () => db.all(`${DUE_ROWS_SQL} LIMIT 500`, [now, now]);
  const rawAll = () => db.all('SELECT id FROM bench_raw_deadlines WHERE due_at <= ? ORDER BY due_at', [now]);
  const found = (await findAll()).length;
  if (found !== dueCount || (await rawAll()).length !== dueCount) throw new Error(`find returned ${found}, expected ${dueCount}`);
  const findMs = await median(7, findAll);
  const batchMs = await median(7, findBatch);
  const rawMs = await median(7, rawAll);
  const plan = pg
    ? (await db.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${DUE_ROWS_SQL}`, [now, now])).map((r) => r['QUERY PLAN'])
    : (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${DUE_ROWS_SQL}`, [now, now])).map((r) => r.detail);

  const fire = await timeIt(() => engine.scheduler.runDue());
  if (fire.result !== dueCount) throw new Error(`runDue fired ${fire.result}, expected ${dueCount}`);
  const fireRate = Math.round(dueCount / (fire.ms / 1000));
  // Baseline for firing: the scheduler's SQL alone (claim 500 due rows, then delete them) on the raw table.
  const rawFire = await timeIt(async () => {
    for (;;) {
      const rows = await db.transaction((tx) => tx.all<{ id: string }>('DELETE FROM bench_raw_deadlines WHERE id IN (SELECT id FROM bench_raw_deadlines WHERE due_at <= ? ORDER BY due_at LIMIT 500) RETURNING id', [now]));
      if (!rows.length) break;
    }
  });
  const rawFireRate = Math.round(dueCount / (rawFire.ms / 1000));
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
  if (admin) {
    await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
    await admin.close();
  }

  const prefix = pg ? 'deadline-sweep.postgres' : 'deadline-sweep';
  return [
    {
      name: `${prefix}.find`,
      metric: `find the ${dueCount.toLocaleString('en')} due deadlines among ${n.toLocaleString('en')} (scheduler's indexed query, median of 7)`,
      unit: 'ms',
      value: findMs,
      baseline: { name: 'raw indexed SELECT on a two-column table, same rows', value: rawMs },
      ratio: ratio(rawMs, findMs),
      target: '< 50 ms',
      met: findMs < 50,
      extra: { identities: n, due: dueCount, batch500Ms: batchMs, plan, buildMs: Math.round(buildMs) },
    },
    {
      name: `${prefix}.fire`,
      metric: `fire ${dueCount.toLocaleString('en')} due inactivity deadlines via scheduler.runDue()`,
      unit: 'deadlines/s',
      value: fireRate,
      baseline: { name: 'raw SQL claim-and-delete of the same rows, 500 per batch', value: rawFireRate },
      ratio: ratio(fireRate, rawFireRate),
      target: '>= 5,000/s',
      met: fireRate >= 5000,
      extra: { ms: Math.round(fire.ms), fired: fire.result },
    },
  ];
}
