import type { Clock } from '@idlc/domain';
import { EventStore, EventStoreDbEventStore, PostgresEventStore, SnapshotStore, SqliteEventStore } from '@idlc/event-store';
import { PostgresDatabase, SqlDatabase, SqliteDatabase } from '@idlc/sql';
import type { EngineConfig } from '../config/config';

export interface Persistence {
  store: EventStore & SnapshotStore;
  /** Where read models live: the same database as the events for SQLite and PostgreSQL. */
  readDb: SqlDatabase;
  /**
   * A mark that stays the same while no other process can have appended events (SQLite's
   * data_version on the file holding them); absent where that cannot be told cheaply.
   */
  appendsElsewhere?: () => number;
  close(): Promise<void>;
}

/** Opens the configured event store and read-model database. */
export async function openPersistence(config: EngineConfig, clock: Clock): Promise<Persistence> {
  if (config.eventStore === 'sqlite') {
    const db = new SqliteDatabase({ filename: config.sqliteFile, synchronous: config.sqliteSynchronous });
    const store = await SqliteEventStore.open(db, clock);
    return { store, readDb: db, appendsElsewhere: oncePerLoopTurn(() => db.dataVersion()), close: () => db.close() };
  }
  if (config.eventStore === 'postgres') {
    const db = new PostgresDatabase({ connectionString: config.databaseUrl!, schema: config.databaseSchema });
    const store = await PostgresEventStore.open(db, clock);
    return {
      store,
      readDb: db,
      close: async () => {
        await store.close();
        await db.close();
      },
    };
  }
  const store = await EventStoreDbEventStore.connect(config.eventStoreUrl!, clock);
  const readDb: SqlDatabase =
    config.readModelStore === 'postgres'
      ? new PostgresDatabase({ connectionString: config.databaseUrl! })
      : new SqliteDatabase({ filename: config.sqliteFile, synchronous: config.sqliteSynchronous });
  return {
    store,
    readDb,
    close: async () => {
      await store.close();
      await readDb.close();
    },
  };
}

/**
 * One reading per turn of the event loop, shared by the decisions made in it (under load, the
 * logins whose token checks finished together). Each such decision is then as of that reading:
 * taken after its request arrived, so as good as a later one. A reading costs file-lock syscalls.
 */
export function oncePerLoopTurn(read: () => number): () => number {
  let value: number | undefined;
  return () => {
    if (value === undefined) {
      value = read();
      setImmediate(() => (value = undefined));
    }
    return value;
  };
}
