import { Pool, PoolClient, types } from 'pg';
import { Dialect, SqlDatabase, SqlExecutor } from './sql';

// BIGINT (int8) and NUMERIC come back as strings by default; every BIGINT here is an epoch-ms
// timestamp or a position, both well inside Number.MAX_SAFE_INTEGER.
types.setTypeParser(20, (v) => Number(v));

const converted = new Map<string, string>();

/** Rewrites `?` placeholders to `$1..$n`, leaving quoted strings alone. */
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
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PgExecutor(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** A dedicated client for LISTEN or advisory locks held across statements. */
  connect(): Promise<PoolClient> {
    return this.pool.connect();
  }

  async exec(script: string): Promise<void> {
    await this.pool.query(script);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
