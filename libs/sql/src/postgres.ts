import { Pool, PoolClient, types } from 'pg';
import { Dialect, insertChunkSize, multiRowInsert, SqlDatabase, SqlExecutor } from './sql';

// BIGINT (int8) and NUMERIC come back as strings by default; every BIGINT here is an epoch-ms
// timestamp or a position, both well inside Number.MAX_SAFE_INTEGER.
types.setTypeParser(20, (v) => Number(v));

const converted = new Map<string, string>();

/** Rewrites `?` placeholders to `$1..$n`, leaving quoted strings and comments alone. */
export function toPgPlaceholders(sql: string): string {
  const hit = converted.get(sql);
  if (hit !== undefined) return hit;
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (quote) {
      out += c;
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '?') {
      out += '$' + ++n;
    } else {
      out += c;
    }
  }
  if (converted.size < 10_000) converted.set(sql, out);
  return out;
}

function params(p?: readonly unknown[]): unknown[] {
  return p ? (p as unknown[]).map((v) => (v === undefined ? null : v)) : [];
}

class PgExecutor implements SqlExecutor {
  readonly dialect: Dialect = 'postgres';
  constructor(private readonly client: Pool | PoolClient) {}
  async all<T>(sql: string, p?: readonly unknown[]): Promise<T[]> {
    return (await this.client.query(toPgPlaceholders(sql), params(p))).rows as T[];
  }
  async get<T>(sql: string, p?: readonly unknown[]): Promise<T | undefined> {
    return (await this.client.query(toPgPlaceholders(sql), params(p))).rows[0] as T | undefined;
  }
  async run(sql: string, p?: readonly unknown[]): Promise<number> {
    return (await this.client.query(toPgPlaceholders(sql), params(p))).rowCount ?? 0;
  }
  async exec(script: string): Promise<void> {
    await this.client.query(script);
  }
  async runMany(sql: string, rows: readonly (readonly unknown[])[]): Promise<number> {
    let changes = 0;
    for (const r of rows) changes += await this.run(sql, r);
    return changes;
  }
  async insertMany(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[], tail?: string): Promise<number> {
    // PostgreSQL binds up to 65535 parameters per statement; fewer, larger statements save round trips.
    const size = insertChunkSize(columns.length, 30_000, 1000);
    let changes = 0;
    for (let i = 0; i < rows.length; i += size) {
      const part = rows.slice(i, i + size);
      const sql = multiRowInsert(table, columns, part.length, tail, (n) => '$' + n);
      changes += (await this.client.query(sql, params(part.flat()))).rowCount ?? 0;
    }
    return changes;
  }
}

export interface PostgresOptions {
  connectionString: string;
  max?: number;
  /** Schema to create tables in (tests isolate themselves with one each). */
  schema?: string;
}

export class PostgresDatabase extends PgExecutor implements SqlDatabase {
  readonly pool: Pool;

  constructor(readonly options: PostgresOptions) {
    const pool = new Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      options: options.schema ? `-c search_path=${options.schema}` : undefined,
    });
    super(pool);
    this.pool = pool;
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn(new PgExecutor(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      // A failed ROLLBACK means the connection is unusable: destroy it rather than pool it.
      broken = await client.query('ROLLBACK').then(
        () => undefined,
        (r) => r ?? e,
      );
      throw e;
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /**
   * A dedicated client for LISTEN or advisory locks held across statements. Until it is released it
   * carries an 'error' listener (a checked-out pg client without one crashes the process when the
   * server drops the connection between queries); release() destroys a client that failed so.
   */
  async connect(): Promise<PoolClient> {
    const client = await this.pool.connect();
    let failure: Error | undefined;
    const onError = (e: Error) => {
      failure = failure ?? e;
    };
    client.on('error', onError);
    const release = client.release;
    client.release = ((err?: Error | boolean) => {
      client.removeListener('error', onError);
      return release.call(client, err ?? failure);
    }) as PoolClient['release'];
    return client;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
