import { ManualClock } from '@idlc/domain';
import { Projection, ProjectionRunner } from '@idlc/engine';
import { EventStore, PostgresEventStore, SqliteEventStore, StoredEvent } from '@idlc/event-store';
import { PostgresDatabase, SqlDatabase, SqlExecutor, SqliteDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describeIf, serviceEnv } from '../support/services';
import { tempDirPerTest } from '../support/temp-dir';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');

/** A read model whose version 2 adds a column: its rows alone could not say which version wrote them. */
class Notes implements Projection {
  readonly name = 'notes';
  readonly tables = ['notes'];
  constructor(readonly version: 1 | 2) {}
  ddl(): string {
    return this.version === 1
      ? 'CREATE TABLE IF NOT EXISTS notes (position BIGINT PRIMARY KEY)'
      : 'CREATE TABLE IF NOT EXISTS notes (position BIGINT PRIMARY KEY, type TEXT NOT NULL)';
  }
  async apply(events: StoredEvent[], tx: SqlExecutor): Promise<void> {
    const v1 = this.version === 1;
    await tx.insertMany('notes', v1 ? ['position'] : ['position', 'type'], events.map((e) => (v1 ? [e.position] : [e.position, e.type])), 'ON CONFLICT (position) DO NOTHING');
  }
}

interface Process {
  db: SqlDatabase;
  store: EventStore;
}

/** Each call is another process on the same database: its own connection (SQLite) or pool (PostgreSQL). */
type Open = () => Promise<Process>;

function suite(openProcess: () => { open: Open; close(): Promise<void> }) {
  let env: { open: Open; close(): Promise<void> };
  beforeEach(() => {
    env = openProcess();
  });
  afterEach(() => env.close());

  const clock = new ManualClock('2026-01-05T09:00:00.000Z');
  const runner = (p: Process, version: 1 | 2) => new ProjectionRunner(p.store, p.db, [new Notes(version)], () => clock.now().getTime());

  it('a new version with another table shape replaces the old table and rebuilds it from zero', async () => {
    const first = await env.open();
    for (let i = 0; i < 5; i++) await first.store.append(`identity-${randomUUID()}`, [{ type: i % 2 ? 'Odd' : 'Even', version: 1, data: {}, metadata: {} }], 'no_stream');
    const v1 = runner(first, 1);
    await v1.prepare();
    await v1.runToHead();
    expect(await first.db.all('SELECT * FROM notes ORDER BY position')).toHaveLength(5);

    const v2 = runner(await env.open(), 2);
    await v2.prepare();
    expect(v2.status()).toEqual([{ name: 'notes', version: 2, position: 0 }]);
    await v2.runToHead();
    const rows = await first.db.all<{ position: number; type: string }>('SELECT position, type FROM notes ORDER BY position');
    expect(rows.map((r) => r.type)).toEqual(['Even', 'Odd', 'Even', 'Odd', 'Even']);
  });

  it('of two processes upgrading side by side, the one that read the old version before the other committed leaves the other\'s rebuild alone', async () => {
    const first = await env.open();
    for (let i = 0; i < 4; i++) await first.store.append(`identity-${randomUUID()}`, [{ type: 'Noted', version: 1, data: {}, metadata: {} }], 'no_stream');
    const v1 = runner(first, 1);
    await v1.prepare();
    await v1.runToHead();

    const worker = await env.open();
    const api = await env.open();
    const upgraded = runner(worker, 2);
    await upgraded.prepare();
    await upgraded.runToHead();
    // The API process read its checkpoint (still version 1) just before the worker's upgrade committed.
    jest.spyOn(api.db, 'get').mockResolvedValueOnce({ position: 4, version: 1 });
    const late = runner(api, 2);
    await late.prepare();
    expect(late.status()).toEqual([{ name: 'notes', version: 2, position: 4 }]);
    expect(await api.db.all('SELECT position, type FROM notes ORDER BY position')).toHaveLength(4);
  });
}

describe('projection version upgrade on SQLite', () => {
  const tempDir = tempDirPerTest('idlc-upgrade-');
  suite(() => {
    const file = join(tempDir(), 'idlc.db');
    const dbs: SqliteDatabase[] = [];
    return {
      open: async () => {
        const db = new SqliteDatabase({ filename: file });
        dbs.push(db);
        return { db, store: await SqliteEventStore.open(db, new ManualClock()) };
      },
      close: async () => {
        for (const db of dbs) await db.close();
      },
    };
  });
});

describeIf(pgUrl)('projection version upgrade on PostgreSQL', () => {
  suite(() => {
    const schema = `up_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const admin = new PostgresDatabase({ connectionString: pgUrl! });
    const opened: { db: PostgresDatabase; store: PostgresEventStore }[] = [];
    let created: Promise<void> | undefined;
    return {
      open: async () => {
        await (created ??= admin.exec(`CREATE SCHEMA ${schema}`));
        const db = new PostgresDatabase({ connectionString: pgUrl!, schema });
        const store = await PostgresEventStore.open(db, new ManualClock());
        opened.push({ db, store });
        return { db, store };
      },
      close: async () => {
        for (const o of opened) {
          await o.store.close();
          await o.db.close();
        }
        await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.close();
      },
    };
  });
});
