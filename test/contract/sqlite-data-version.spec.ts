import { SqliteDatabase } from '@idlc/sql';
import { oncePerLoopTurn } from '../../libs/engine/src/persistence/open-persistence';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { tempDirPerTest } from '../support/temp-dir';

/** The mark the identity cache trusts to skip head reads: it must move for every commit made elsewhere. */
describe('SQLite dataVersion: changes exactly when another connection commits', () => {
  const tempDir = tempDirPerTest('idlc-dv-');
  /** The database, and another connection to its file as another process would have. */
  const open = async () => {
    const file = join(tempDir(), 'dv.db');
    const db = new SqliteDatabase({ filename: file });
    await db.exec('CREATE TABLE t (x INTEGER)');
    return { db, other: new Database(file) };
  };

  it("stays put for this database's own writes, reads and checkpoints; moves for a commit on another connection, as another process makes", async () => {
    const { db, other } = await open();
    try {
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

  it('the identity cache reads it once per turn of the event loop: decisions made in one turn share the reading, the next turn reads again', async () => {
    const { db, other } = await open();
    try {
      let reads = 0;
      const mark = oncePerLoopTurn(() => (reads++, db.dataVersion()));
      const first = mark();
      other.prepare('INSERT INTO t VALUES (1)').run();
      // Same turn: as of the first reading, taken after every request decided in this turn arrived.
      expect(mark()).toBe(first);
      expect(reads).toBe(1);
      await new Promise((r) => setImmediate(r));
      expect(mark()).not.toBe(first);
      expect(reads).toBe(2);
    } finally {
      other.close();
      await db.close();
    }
  });
});
