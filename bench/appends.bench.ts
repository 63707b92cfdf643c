import Database from 'better-sqlite3';
import { systemClock } from '@idlc/domain';
import { EventStore, newId, SqliteEventStore } from '@idlc/event-store';
import { PostgresDatabase, SqliteDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BenchContext, BenchResult, ratio, tempDir, timeIt } from './lib';

// Streams and event ids are named as the engine names them (UUIDv7, see libs/event-store/src/ids.ts), for the raw baseline too.
const payload = () => ({
  type: 'LoginRecorded',
  version: 1,
  data: { at: new Date().toISOString(), issuer: 'https://idp.example.com', subject: randomUUID(), protocol: 'oidc' },
  metadata: { correlationId: randomUUID(), source: 'bench', actor: 'bench' },
});

const RAW_DDL = `CREATE TABLE raw_events (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL, revision INTEGER NOT NULL,
  type TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream_id, revision))`;

async function storeRates(store: EventStore, singles: number, batches: number) {
  const single = await timeIt(async () => {
    for (let i = 0; i < singles; i++) await store.append(`identity-${newId()}`, [payload()], 'no_stream');
  });
  const batched = await timeIt(async () => {
    for (let i = 0; i < batches; i++) await store.append(`identity-${newId()}`, Array.from({ length: 100 }, payload), 'no_stream');
  });
  return { single: Math.round(singles / (single.ms / 1000)), batched: Math.round((batches * 100) / (batched.ms / 1000)) };
}

export async function appendsBench(ctx: BenchContext): Promise<BenchResult[]> {
  const singles = ctx.quick ? 2000 : 30000;
  const batches = ctx.quick ? 50 : 1000;
  const dir = tempDir('appends');
  const out: BenchResult[] = [];

  // Baseline: raw inserts into an equivalent table with better-sqlite3, same pragmas, same process.
  const raw = new Database(join(dir, 'raw.db'));
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.exec(RAW_DDL);
  const ins = raw.prepare('INSERT INTO raw_events (id, stream_id, revision, type, version, data, metadata, recorded_at) VALUES (?, ?, 0, ?, 1, ?, ?, ?)');
  const row = () => {
    const p = payload();
    return [newId(), `identity-${newId()}`, p.type, JSON.stringify(p.data), JSON.stringify(p.metadata), Date.now()];
  };
  const rawSingle = await timeIt(async () => {
    for (let i = 0; i < singles; i++) ins.run(...row());
  });
  const insertMany = raw.transaction((rows: unknown[][]) => {
    for (const r of rows) ins.run(...r);
  });
  const rawBatch = await timeIt(async () => {
    for (let i = 0; i < batches; i++) insertMany(Array.from({ length: 100 }, row));
  });
  raw.close();
  const rawSingleRate = Math.round(singles / (rawSingle.ms / 1000));
  const rawBatchRate = Math.round((batches * 100) / (rawBatch.ms / 1000));

  const db = new SqliteDatabase({ filename: join(dir, 'store.db') });
  const store = await SqliteEventStore.open(db, systemClock);
  const rates = await storeRates(store, singles, batches);
  await db.close();
  out.push({
    name: 'appends.sqlite.single',
    metric: 'single-event appends to distinct streams',
    unit: 'events/s',
    value: rates.single,
    baseline: { name: 'raw better-sqlite3 autocommit INSERT', value: rawSingleRate },
    ratio: ratio(rates.single, rawSingleRate),
    target: '>= 20,000 events/s',
    met: rates.single >= 20000,
  });
  out.push({
    name: 'appends.sqlite.batch100',
    metric: '100-event batch appends',
    unit: 'events/s',
    value: rates.batched,
    baseline: { name: 'raw better-sqlite3 100-row transaction', value: rawBatchRate },
    ratio: ratio(rates.batched, rawBatchRate),
    target: '>= 50% of raw',
    met: rates.batched >= rawBatchRate * 0.5,
  });

  if (process.env.DATABASE_URL) {
    const schema = `bench_${randomUUID().slice(0, 8)}`;
    const admin = new PostgresDatabase({ connectionString: process.env.DATABASE_URL });
    await admin.exec(`CREATE SCHEMA ${schema}`);
    try {
      const pg = new PostgresDatabase({ connectionString: process.env.DATABASE_URL, schema });
      await pg.exec(`CREATE TABLE raw_events (position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL,
        revision INTEGER NOT NULL, type TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at BIGINT NOT NULL, UNIQUE (stream_id, revision))`);
      const pgBatches = ctx.quick ? 20 : 300;
      const pgSingles = ctx.quick ? 500 : 5000;
      const rawPg = await timeIt(async () => {
        for (let i = 0; i < pgBatches; i++) {
          const rows = Array.from({ length: 100 }, row);
          const values = rows.map((_, j) => `($${j * 6 + 1}, $${j * 6 + 2}, 0, $${j * 6 + 3}, 1, $${j * 6 + 4}, $${j * 6 + 5}, $${j * 6 + 6})`).join(', ');
          await pg.pool.query(`INSERT INTO raw_events (id, stream_id, revision, type, version, data, metadata, recorded_at) VALUES ${values}`, rows.flat());
        }
      });
      const rawPgSingle = await timeIt(async () => {
        for (let i = 0; i < pgSingles; i++) {
          await pg.pool.query('INSERT INTO raw_events (id, stream_id, revision, type, version, data, metadata, recorded_at) VALUES ($1, $2, 0, $3, 1, $4, $5, $6)', row());
        }
      });
      const { PostgresEventStore } = (await import('@idlc/event-store')) as any;
      const pgStore: EventStore = await PostgresEventStore.open(pg, systemClock);
      const pgRates = await storeRates(pgStore, pgSingles, pgBatches);
      await pgStore.close();
      await pg.close();
      const rawPgRate = Math.round((pgBatches * 100) / (rawPg.ms / 1000));
      const rawPgSingleRate = Math.round(pgSingles / (rawPgSingle.ms / 1000));
      out.push({
        name: 'appends.postgres.single',
        metric: 'single-event appends to distinct streams',
        unit: 'events/s',
        value: pgRates.single,
        baseline: { name: 'raw pg single-row INSERT', value: rawPgSingleRate },
        ratio: ratio(pgRates.single, rawPgSingleRate),
      });
      out.push({
        name: 'appends.postgres.batch100',
        metric: '100-event batch appends',
        unit: 'events/s',
        value: pgRates.batched,
        baseline: { name: 'raw pg 100-row INSERT', value: rawPgRate },
        ratio: ratio(pgRates.batched, rawPgRate),
        target: '>= 50% of raw',
        met: pgRates.batched >= rawPgRate * 0.5,
      });
    } finally {
      await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    }
  } else {
    ctx.log('appends.postgres: skipped (DATABASE_URL not set)');
  }
  return out;
}
