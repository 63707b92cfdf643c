import { ManualClock } from '@idlc/domain';
import { SqliteEventStore } from '@idlc/event-store';
import { SqliteDatabase } from '@idlc/sql';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventStoreContract } from './event-store.contract';

eventStoreContract('sqlite (file, WAL)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-contract-'));
  const db = new SqliteDatabase({ filename: join(dir, 'events.db') });
  const clock = new ManualClock();
  const store = await SqliteEventStore.open(db, clock);
  return {
    store,
    clock,
    cleanup: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
