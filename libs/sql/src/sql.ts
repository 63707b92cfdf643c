/**
 * A small dialect-neutral SQL layer shared by the event store adapters and the read models, so
 * projections are written once for SQLite and PostgreSQL. Statements use `?` placeholders and
 * portable SQL (INSERT ... ON CONFLICT, TEXT for JSON, BIGINT epoch milliseconds for time).
 */
export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  readonly dialect: Dialect;
  all<T = Record<string, any>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Record<string, any>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /**
   * Runs one statement once per parameter row, in order, and returns the rows changed. Read models
   * write a batch's rows with one call instead of one await per row: SQLite loops synchronously
   * over one prepared statement.
   */
  runMany(sql: string, rows: readonly (readonly unknown[])[]): Promise<number>;
  /**
   * `INSERT INTO table (columns) VALUES (...), (...) [tail]` in chunks of many rows. `tail` is an
   * ON CONFLICT clause; for DO UPDATE the rows must have distinct conflict keys (PostgreSQL refuses
   * to update one row twice in a statement).
   */
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[], tail?: string): Promise<number>;
  /** Runs a script of statements without parameters (DDL). */
  exec(script: string): Promise<void>;
}

/** Rows per multi-row INSERT: large enough to amortise a statement, under every bind limit. */
export function insertChunkSize(columns: number, maxParams = 999, maxRows = 64): number {
  return Math.max(1, Math.min(maxRows, Math.floor(maxParams / columns)));
}

/** The INSERT for `rows` tuples; `param(n)` spells the n-th placeholder (`?`, or `$n` for PostgreSQL). */
export function multiRowInsert(table: string, columns: readonly string[], rows: number, tail = '', param: (n: number) => string = () => '?'): string {
  const tuples: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) tuples.push(`(${columns.map(() => param(++n)).join(', ')})`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}${tail ? ' ' + tail : ''}`;
}

export interface SqlDatabase extends SqlExecutor {
  /** Runs fn in one transaction: all of it commits or none of it does. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Connection settings for a long bulk write (a read-model rebuild) that would not suit everyday
   * traffic; resolves to a function that puts the previous ones back.
   */
  tuneForBulk?(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** `fn` over `items`, at most `limit` in flight; each result settles on its own, in the order of `items`. */
export async function settleEach<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, limit = Infinity): Promise<PromiseSettledResult<R>[]> {
  const out = new Array<PromiseSettledResult<R>>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i]) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Serialises async critical sections; uncontended acquisition costs one microtask. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  get busy(): boolean {
    return this.pending > 0;
  }

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.pending++;
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => {
        this.pending--;
      },
      () => {
        this.pending--;
      },
    );
    return result;
  }
}
