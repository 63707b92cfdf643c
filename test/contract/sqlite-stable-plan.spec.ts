import { SqliteDatabase, withStablePlan } from '@idlc/sql';
import { join } from 'node:path';
import { tempDirPerTest } from '../support/temp-dir';

describe('SQLite: bound LIMIT/OFFSET keep their plan', () => {
  const tempDir = tempDirPerTest('idlc-plan-');

  it('wraps every bound LIMIT and OFFSET in a CAST, and nothing else', () => {
    expect(withStablePlan('SELECT a FROM t WHERE b = ? ORDER BY a LIMIT ? OFFSET ?')).toBe(
      'SELECT a FROM t WHERE b = ? ORDER BY a LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)',
    );
    expect(withStablePlan('select a from t order by a\n  limit   ?')).toBe('select a from t order by a\n  limit CAST(? AS INTEGER)');
    expect(withStablePlan('SELECT a FROM t LIMIT 10 OFFSET 5')).toBe('SELECT a FROM t LIMIT 10 OFFSET 5');
    expect(withStablePlan("SELECT a FROM t WHERE note = 'no LIMIT here' AND x = ?")).toBe("SELECT a FROM t WHERE note = 'no LIMIT here' AND x = ?");
    expect(withStablePlan('SELECT rate_limit FROM t WHERE rate_limit = ?')).toBe('SELECT rate_limit FROM t WHERE rate_limit = ?');
  });

  it('pages correctly through one cached statement as the bound values change', async () => {
    const db = new SqliteDatabase({ filename: join(tempDir(), 'p.db') });
    try {
      await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL); CREATE INDEX t_k ON t (k, id);');
      await db.writeSync(() => {
        for (let i = 1; i <= 50; i++) db.writer.prepare('INSERT INTO t (id, k) VALUES (?, ?)').run(i, i % 2 ? 'odd' : 'even');
      });
      const sql = 'SELECT id FROM t WHERE k = ? ORDER BY id LIMIT ? OFFSET ?';
      const page = async (k: string, limit: number, offset: number) => (await db.all<{ id: number }>(sql, [k, limit, offset])).map((r) => r.id);
      expect(await page('odd', 3, 0)).toEqual([1, 3, 5]);
      expect(await page('odd', 2, 3)).toEqual([7, 9]);
      expect(await page('even', 4, 10)).toEqual([22, 24, 26, 28]);
      expect(await page('even', 100, 24)).toEqual([50]);
      expect(await page('odd', 0, 0)).toEqual([]);
      expect(db.pluckAll<number>('SELECT id FROM t ORDER BY id DESC LIMIT ?', [2])).toEqual([50, 49]);
    } finally {
      await db.close();
    }
  });
});
