import { ManualClock } from '@idlc/domain';
import { SqliteEventStore } from '@idlc/event-store';
import { SqliteDatabase } from '@idlc/sql';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirPerTest } from '../support/temp-dir';

const ev = (n: number) => ({ type: 'Written', version: 1, data: { n, pad: 'x'.repeat(400) } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Ten bursts of 300 single-event appends (about 3 WAL pages each) with a pause between them. With the
 * checkpoint thread the WAL is copied back between bursts and restarts, so the file never holds
 * much more than a burst; without it the writer's backstop (10,000 pages) is never reached and the
 * WAL holds all of them.
 */
async function bursts(db: SqliteDatabase): Promise<{ maxWalBytes: number; walFile: string }> {
  const store = await SqliteEventStore.open(db, new ManualClock());
  const walFile = `${db.options.filename}-wal`;
  let maxWalBytes = 0;
  let n = 0;
  for (let burst = 0; burst < 10; burst++) {
    for (let i = 0; i < 300; i++, n++) await store.append(`s-${n}`, [ev(n)], 'no_stream');
    maxWalBytes = Math.max(maxWalBytes, statSync(walFile).size);
    await sleep(300);
  }
  return { maxWalBytes, walFile };
}

describe('SQLite: the WAL is copied back on a helper thread, not inside commits', () => {
  const tempDir = tempDirPerTest('idlc-ckpt-');

  it('starts after the first commits, keeps the WAL to about one burst, and loses nothing across close and reopen', async () => {
    const filename = join(tempDir(), 'events.db');
    const db = new SqliteDatabase({ filename });
    const { maxWalBytes, walFile } = await bursts(db);
    expect(db.checkpointingInBackground).toBe(true);
    // One burst is ~900 pages (3.7 MB); all ten would be ~37 MB.
    expect(maxWalBytes).toBeLessThan(12 * 1024 * 1024);
    await db.close();
    expect(db.checkpointingInBackground).toBe(false);
    // The helper's connection was closed first, so the writer's close checkpointed and removed the WAL.
    expect(existsSync(walFile)).toBe(false);
    const again = new SqliteDatabase({ filename });
    try {
      const store = await SqliteEventStore.open(again, new ManualClock());
      expect(await store.headPosition()).toBe(3000);
      const last = await store.readStream('s-2999');
      expect(last.map((e) => e.data.n)).toEqual([2999]);
    } finally {
      await again.close();
    }
  });

  it('backgroundCheckpoint: false leaves checkpoints to the writer (its backstop is never raised)', async () => {
    const db = new SqliteDatabase({ filename: join(tempDir(), 'events.db'), backgroundCheckpoint: false });
    try {
      const { maxWalBytes } = await bursts(db);
      expect(db.checkpointingInBackground).toBe(false);
      expect(Number(db.writer.pragma('wal_autocheckpoint', { simple: true }))).toBe(1000);
      // The writer's own checkpoints (every 1,000 pages) bound it too, at a page count not a burst.
      expect(maxWalBytes).toBeLessThan(12 * 1024 * 1024);
    } finally {
      await db.close();
    }
  });
});
