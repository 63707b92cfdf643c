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
}

export interface SqlDatabase extends SqlExecutor {
  /** Runs fn in one transaction: all of it commits or none of it does. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  close(): Promise<void>;
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
