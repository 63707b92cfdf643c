import { PostgresDatabase, SqlDatabase, SqliteDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describeIf, serviceEnv } from '../support/services';
import { tempDirPerTest } from '../support/temp-dir';

/** The set-wise writes the projections use: every row lands once, across chunk boundaries, in one transaction. */
const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');

function suite(name: string, open: () => Promise<{ db: SqlDatabase; close(): Promise<void> }>) {
  describe(`batched writes on ${name}`, () => {
    let db: SqlDatabase;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ db, close } = await open());
      await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL, flag INTEGER, note TEXT)');
    });
    afterEach(() => close());

    const rows = (count: number, from = 0) => Array.from({ length: count }, (_, i) => [`k${from + i}`, from + i, (from + i) % 2, i % 3 ? `n${i}` : null]);

    it.each([0, 1, 63, 64, 65, 200, 1001, 2500])('insertMany writes exactly %i rows', async (count) => {
      const changed = await db.transaction((tx) => tx.insertMany('t', ['k', 'n', 'flag', 'note'], rows(count)));
      expect(changed).toBe(count);
      const got = await db.all<{ k: string; n: number; flag: number; note: string | null }>('SELECT k, n, flag, note FROM t ORDER BY n');
      expect(got.map((r) => [r.k, Number(r.n), Number(r.flag), r.note])).toEqual(rows(count));
    });

    it('takes an ON CONFLICT tail, and runMany runs one statement per row in order', async () => {
      await db.insertMany('t', ['k', 'n', 'flag', 'note'], rows(100));
      const upserted = await db.transaction((tx) =>
        tx.insertMany('t', ['k', 'n', 'flag', 'note'], rows(100, 50), 'ON CONFLICT (k) DO UPDATE SET note = excluded.note, n = excluded.n + 1000'),
      );
      expect(upserted).toBe(100);
      expect(await db.get('SELECT count(*) AS c FROM t')).toEqual({ c: 150 });
      expect(Number((await db.get<{ n: number }>(`SELECT n FROM t WHERE k = 'k60'`))!.n)).toBe(1060);
      expect(Number((await db.get<{ n: number }>(`SELECT n FROM t WHERE k = 'k140'`))!.n)).toBe(140);
      const deleted = await db.transaction((tx) => tx.runMany('DELETE FROM t WHERE k = ? AND n > ?', [['k0', -1], ['k1', 5], ['k2', -1], ['nope', 0]]));
      expect(deleted).toBe(2);
      expect(await db.all(`SELECT k FROM t WHERE k IN ('k0', 'k1', 'k2') ORDER BY k`)).toEqual([{ k: 'k1' }]);
    });

    it('rolls back with the transaction', async () => {
      await expect(
        db.transaction(async (tx) => {
          await tx.insertMany('t', ['k', 'n', 'flag', 'note'], rows(300));
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(await db.get('SELECT count(*) AS c FROM t')).toEqual({ c: 0 });
    });
  });
}

suite('SQLite', async () => {
  const db = new SqliteDatabase({ filename: ':memory:' });
  return { db, close: () => db.close() };
});

describeIf(pgUrl)('PostgreSQL', () =>
  suite('PostgreSQL', async () => {
    const schema = `batch_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const admin = new PostgresDatabase({ connectionString: pgUrl! });
    await admin.exec(`CREATE SCHEMA ${schema}`);
    const db = new PostgresDatabase({ connectionString: pgUrl!, schema });
    return {
      db,
      close: async () => {
        await db.close();
        await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
        await admin.close();
      },
    };
  }),
);

describe('SQLite bulk tuning', () => {
  const tempDir = tempDirPerTest('idlc-bulk-wal-');

  it('checkpoints the WAL from a helper thread while the writer does not, and puts the writer back after', async () => {
    const filename = join(tempDir(), 'bulk.db');
    const db = new SqliteDatabase({ filename });
    try {
      await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      expect(db.writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      expect(db.checkpointingInBackground).toBe(false);
      const restore = await db.tuneForBulk();
      // A rebuild starts the helper at once, and the writer stops checkpointing altogether meanwhile.
      expect(db.checkpointingInBackground).toBe(true);
      expect(db.writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      const fileBefore = statSync(filename).size;
      // Several MiB over a few commits: only a checkpoint moves them from the WAL into the file.
      const value = 'x'.repeat(1000);
      for (let c = 0; c < 4; c++) {
        await db.transaction((tx) => tx.insertMany('t', ['k', 'v'], Array.from({ length: 2000 }, (_, i) => [c * 2000 + i, value])));
      }
      const deadline = Date.now() + 10_000;
      while (statSync(filename).size < fileBefore + 6_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(statSync(filename).size).toBeGreaterThan(fileBefore + 6_000_000);
      await restore();
      // The helper stays for everyday commits; the writer gets back its backstop (10,000 pages).
      expect(db.checkpointingInBackground).toBe(true);
      expect(db.writer.pragma('wal_autocheckpoint', { simple: true })).toBe(10000);
      expect(await db.get('SELECT count(*) AS c FROM t')).toEqual({ c: 8000 });
    } finally {
      await db.close();
    }
  });
});
