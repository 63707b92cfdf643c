import { SqliteDatabase } from '@idlc/sql';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { tempDirPerTest } from '../support/temp-dir';

/** The mark the identity cache trusts to skip head reads: it must move for every commit made elsewhere. */
describe('SQLite dataVersion: changes exactly when another connection commits', () => {
  const tempDir = tempDirPerTest('idlc-dv-');

  it("stays put for this database's own writes, reads and checkpoints; moves for a commit on another connection, as another process makes", async () => {
    const file = join(tempDir(), 'dv.db');
    const db = new SqliteDatabase({ filename: file });
    const other = new Database(file);
    try {
      await db.exec('CREATE TABLE t (x INTEGER)');
      const start = db.dataVersion();
      await db.writeSync(() => db.writer.prepare('INSERT INTO t VALUES (1)').run());
      await db.run('INSERT INTO t VALUES (?)', [2]);
      await db.all('SELECT * FROM t');
      other.pragma('wal_checkpoint(PASSIVE)');
      expect(db.dataVersion()).toBe(start);

      other.prepare('INSERT INTO t VALUES (3)').run();
      const after = db.dataVersion();
      expect(after).not.toBe(start);
      expect(db.dataVersion()).toBe(after);
    } finally {
      other.close();
      await db.close();
    }
  });
});
