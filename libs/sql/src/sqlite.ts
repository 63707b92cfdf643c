import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { insertChunkSize, multiRowInsert, Mutex, SqlDatabase, SqlExecutor } from './sql';
import { startWalCheckpointer, WalCheckpointer } from './wal-checkpointer';

export interface SqliteOptions {
  /** A file path, or ':memory:' (tests). */
  filename: string;
  /** 'NORMAL' survives process crashes; 'FULL' also survives power loss of the last commits. */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Copy the WAL back into the database file on a helper thread (default: on for files). Otherwise
   * every thousandth page committed pays for a checkpoint and its fsyncs inside someone's commit.
   */
  backgroundCheckpoint?: boolean;
}

/** Commits before the checkpoint thread starts: short-lived databases (tests, CLI reads) never need one. */
const CHECKPOINTER_AFTER_COMMITS = 256;
/** With the thread running, the writer checkpoints only when the WAL outgrows this (pages), as a backstop. */
const BACKSTOP_AUTOCHECKPOINT = 10_000;

// better-sqlite3 refuses booleans and undefined: map them to what PostgreSQL would store.
const bindOne = (p: unknown): unknown => (p === undefined ? null : typeof p === 'boolean' ? (p ? 1 : 0) : p);

function bind(params?: readonly unknown[]): unknown[] {
  if (!params) return [];
  return params.map(bindOne);
}

/**
 * SQLite (3.53 here, built with STAT4) reads a bound LIMIT/OFFSET while planning and marks the
 * statement expired on every rebind of that parameter, so each run re-parsed and re-planned it:
 * about 60 % of a `userName eq` lookup. A CAST is an expression, not a bare parameter, so the plan
 * stands; the value and its meaning are the same.
 */
const BOUND_LIMIT = /\b(LIMIT|OFFSET)\s+\?/gi;
export const withStablePlan = (sql: string): string => sql.replace(BOUND_LIMIT, '$1 CAST(? AS INTEGER)');

/** Writer settings during bulk writes (see tuneForBulk); temp_store 2 is MEMORY. */
const BULK_PRAGMAS: [string, number][] = [
  ['cache_size', -64 * 1024],
  ['temp_store', 2],
  ['threads', 2],
];

/**
 * One write connection guarded by an async mutex (SQLite has one writer; a second connection in the
 * same thread would dead-lock on the file lock), and one read connection that sees the last
 * committed snapshot in WAL mode without waiting for writers.
 */
export class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  readonly writer: Database.Database;
  private readonly reader: Database.Database;
  private readonly mutex = new Mutex();
  private readonly cache = new Map<string, Database.Statement>();
  private readonly readCache = new Map<string, Database.Statement>();
  /** Statements that hand back only their first column, per connection. */
  private readonly pluckCache = new Map<string, Database.Statement>();
  private readonly writerPluckCache = new Map<string, Database.Statement>();
  /** Emits 'committed' after event appends, to wake subscribers without polling. */
  readonly events = new EventEmitter();
  private closed = false;
  private commits = 0;
  private checkpointer?: WalCheckpointer;
  private dataVersionStmt?: Database.Statement;
  /**
   * Runs its argument in a transaction, or in a savepoint when one is open. Made once: each
   * better-sqlite3 transaction() call builds four wrappers and defines their properties, which was
   * about a tenth of a single-event append's CPU.
   */
  private readonly atomically: <T>(work: () => T) => T;

  constructor(readonly options: SqliteOptions) {
    if (options.filename !== ':memory:') mkdirSync(dirname(options.filename), { recursive: true });
    this.writer = new Database(options.filename);
    this.writer.pragma('journal_mode = WAL');
    this.writer.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    this.writer.pragma('busy_timeout = 5000');
    this.writer.pragma('foreign_keys = ON');
    // An in-memory database is private to its connection: read through the writer then.
    this.reader = options.filename === ':memory:' ? this.writer : new Database(options.filename);
    if (this.reader !== this.writer) this.reader.pragma('busy_timeout = 5000');
    this.events.setMaxListeners(0);
    this.atomically = this.writer.transaction((work: () => unknown) => work()) as <T>(work: () => T) => T;
  }

  private stmt(sql: string, db: Database.Database = this.writer): Database.Statement {
    const cache = db === this.writer ? this.cache : this.readCache;
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(withStablePlan(sql));
      cache.set(sql, s);
    }
    return s;
  }

  /** Synchronous executor bound to the write connection; only valid inside writeSync/transaction. */
  private readonly txExecutor: SqlExecutor = {
    dialect: 'sqlite',
    all: async (sql, params) => this.stmt(sql).all(...bind(params)) as any[],
    get: async (sql, params) => this.stmt(sql).get(...bind(params)) as any,
    run: async (sql, params) => this.stmt(sql).run(...bind(params)).changes,
    runMany: async (sql, rows) => this.runManySync(sql, rows),
    insertMany: async (table, columns, rows, tail) => this.insertManySync(table, columns, rows, tail),
    exec: async (script) => {
      this.writer.exec(script);
    },
  };

  /** One prepared statement, run synchronously for each row (only inside writeSync/transaction). */
  runManySync(sql: string, rows: readonly (readonly unknown[])[]): number {
    if (!rows.length) return 0;
    const s = this.stmt(sql);
    let changes = 0;
    for (const r of rows) changes += s.run(...bind(r)).changes;
    return changes;
  }

  /** Multi-row INSERTs of a fixed size from one cached statement; the remainder row by row. */
  insertManySync(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[], tail = ''): number {
    if (!rows.length) return 0;
    const width = columns.length;
    const size = insertChunkSize(width);
    let changes = 0;
    let i = 0;
    if (rows.length >= size) {
      const many = this.stmt(multiRowInsert(table, columns, size, tail));
      const params = new Array<unknown>(size * width);
      for (; i + size <= rows.length; i += size) {
        for (let j = 0; j < size; j++) {
          const r = rows[i + j];
          for (let k = 0; k < width; k++) params[j * width + k] = bindOne(r[k]);
        }
        changes += many.run(params).changes;
      }
    }
    if (i < rows.length) {
      const one = this.stmt(multiRowInsert(table, columns, 1, tail));
      for (; i < rows.length; i++) changes += one.run(...bind(rows[i])).changes;
    }
    return changes;
  }

  allSync<T>(sql: string, params?: readonly unknown[]): T[] {
    return this.stmt(sql).all(...bind(params)) as T[];
  }
  getSync<T>(sql: string, params?: readonly unknown[]): T | undefined {
    return this.stmt(sql).get(...bind(params)) as T | undefined;
  }
  runSync(sql: string, params?: readonly unknown[]): Database.RunResult {
    return this.stmt(sql).run(...bind(params));
  }

  /** Work waiting for the writer; the next commit takes all of it (group commit). */
  private grouped: { work: () => unknown; resolve: (v: any) => void; reject: (e: unknown) => void }[] = [];

  /**
   * Group commit: `work` runs synchronously on the writer inside its own savepoint, in one
   * transaction with every other grouped work queued while the writer was busy (another commit, a
   * projection batch). A throw rolls back that work alone; every caller is answered only after the
   * commit that holds its writes. Fewer commits under load, the same all-or-nothing per caller.
   */
  writeGrouped<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.grouped.push({ work, resolve, reject });
      if (this.grouped.length === 1) this.flushGrouped();
    });
  }

  private flushGrouped(): void {
    let batch: typeof this.grouped | undefined;
    type Outcome = { ok: unknown } | { error: unknown };
    this.writeSync((): Outcome[] => {
      // Taken when the writer is ours, so everything queued while waiting joins this commit; later
      // arrivals find the queue empty and schedule the next flush themselves.
      batch = this.grouped;
      this.grouped = [];
      // Alone in its commit, work needs no savepoint: the transaction itself is all-or-nothing.
      if (batch.length === 1) return [{ ok: batch[0].work() }];
      return batch.map((g): Outcome => {
        try {
          // A nested better-sqlite3 transaction is a savepoint.
          return { ok: this.atomically(g.work) };
        } catch (error) {
          return { error };
        }
      });
    }).then(
      (outcomes) => outcomes.forEach((o, i) => ('ok' in o ? batch![i].resolve(o.ok) : batch![i].reject(o.error))),
      (error) => {
        // The commit failed (nothing of the batch is stored), or the writer could not be had at all
        // (closed): then the queue was never taken and its callers are answered here.
        if (!batch) {
          batch = this.grouped;
          this.grouped = [];
        }
        for (const g of batch) g.reject(error);
      },
    );
  }

  /** Runs a synchronous unit of work on the writer, in a transaction, under the mutex. */
  writeSync<T>(fn: () => T): Promise<T> {
    this.noteCommit();
    return this.mutex.run(() => this.atomically(fn));
  }

  /** Write transactions begun on this connection (each a commit unless it threw). */
  get commitCount(): number {
    return this.commits;
  }

  private noteCommit(): void {
    if (++this.commits === CHECKPOINTER_AFTER_COMMITS) this.startCheckpointer();
  }

  /**
   * SQLite's `data_version` as the write connection sees it: it changes when any other connection
   * (another process, the CLI) commits, never for this connection's own writes. Cheaper than any
   * table read, so callers can tell "nothing changed elsewhere" before checking what did.
   */
  dataVersion(): number {
    this.dataVersionStmt ??= this.writer.prepare('PRAGMA data_version').pluck();
    return this.dataVersionStmt.get() as number;
  }

  /** True while the WAL is copied back on the helper thread (diagnostics, tests). */
  get checkpointingInBackground(): boolean {
    return this.checkpointer !== undefined;
  }

  /** Starts copying the WAL back on a helper thread (see wal-checkpointer.ts); a no-op where there is none. */
  private startCheckpointer(): void {
    if (this.checkpointer || this.options.backgroundCheckpoint === false || this.options.filename === ':memory:' || this.closed) return;
    const checkpointer = startWalCheckpointer(this.options.filename);
    checkpointer.onFailure = () => {
      // The writer checkpoints for itself again.
      if (this.checkpointer !== checkpointer) return;
      this.checkpointer = undefined;
      if (!this.closed) this.writer.pragma('wal_autocheckpoint = 1000');
    };
    this.checkpointer = checkpointer;
    this.writer.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT}`);
  }

  private async stopCheckpointer(): Promise<void> {
    const checkpointer = this.checkpointer;
    this.checkpointer = undefined;
    await checkpointer?.stop();
  }

  async all<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.stmt(sql, this.reader).all(...bind(params)) as T[];
  }
  /** First column of every row, from the read connection (one value per row is cheaper to hand over). */
  pluckAll<T>(sql: string, params?: readonly unknown[]): T[] {
    return this.pluckStmt(sql, this.reader).all(...bind(params)) as T[];
  }

  /** The first column of the first row, on the writer (inside writeSync/writeGrouped work): no row object is made. */
  valueSync<T>(sql: string, params?: readonly unknown[]): T | undefined {
    return this.pluckStmt(sql, this.writer).get(...bind(params)) as T | undefined;
  }

  private pluckStmt(sql: string, db: Database.Database): Database.Statement {
    const cache = db === this.writer ? this.writerPluckCache : this.pluckCache;
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(withStablePlan(sql)).pluck();
      cache.set(sql, s);
    }
    return s;
  }
  async get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined> {
    return this.stmt(sql, this.reader).get(...bind(params)) as T | undefined;
  }
  /** A single write statement; it joins the group commit of whatever else is waiting for the writer. */
  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.writeGrouped(() => this.stmt(sql).run(...bind(params)).changes);
  }
  runMany(sql: string, rows: readonly (readonly unknown[])[]): Promise<number> {
    return this.writeSync(() => this.runManySync(sql, rows));
  }
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[], tail?: string): Promise<number> {
    return this.writeSync(() => this.insertManySync(table, columns, rows, tail));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.noteCommit();
    return this.mutex.run(async () => {
      this.writer.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.txExecutor);
        this.writer.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw e;
      }
    });
  }

  /**
   * For a rebuild: a page cache large enough for the b-trees it inserts into at random places (the
   * default 2 MiB makes every such insert a read and a rewrite); statement journals in memory (each
   * multi-row INSERT inside a transaction journals every page it touches first, which on disk is one
   * write() per page); helper threads for the sorts of CREATE INDEX; WAL checkpoints on a helper
   * thread instead of inside every commit. Durability settings are left alone: the events live in
   * the same file.
   */
  tuneForBulk(): Promise<() => Promise<void>> {
    return this.mutex.run(() => {
      const pragmas: [string, number][] = [...BULK_PRAGMAS];
      // Each commit of a rebuild would copy the WAL into the database file itself; the helper thread
      // does that meanwhile, on the other core (not for ':memory:', which has no WAL).
      this.startCheckpointer();
      if (this.checkpointer) pragmas.push(['wal_autocheckpoint', 0]);
      const before = pragmas.map(([name]) => [name, this.writer.pragma(name, { simple: true })] as const);
      for (const [name, value] of pragmas) this.writer.pragma(`${name} = ${value}`);
      return () =>
        this.mutex.run(() => {
          // The backstop comes back only while the helper still runs; without it, the writer's own 1,000.
          for (const [name, value] of before) {
            if (name === 'wal_autocheckpoint') this.writer.pragma(`wal_autocheckpoint = ${this.checkpointer ? Number(value) : 1000}`);
            else this.writer.pragma(`${name} = ${Number(value)}`);
          }
        });
    });
  }

  exec(script: string): Promise<void> {
    return this.mutex.run(() => {
      this.writer.exec(script);
    });
  }

  /** Read-connection iteration for exports and replays: constant memory. */
  iterate<T>(sql: string, params?: readonly unknown[]): IterableIterator<T> {
    return this.reader.prepare(withStablePlan(sql)).iterate(...bind(params)) as IterableIterator<T>;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.run(() => undefined);
    // Before the writer closes: the last connection to close checkpoints and removes the WAL.
    await this.stopCheckpointer();
    this.events.removeAllListeners();
    if (this.reader !== this.writer) this.reader.close();
    this.writer.close();
  }
}
