import type { Clock } from '@idlc/domain';
import type { PostgresDatabase } from '@idlc/sql';
import { hash as cryptoHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import { checkAppendMany } from '../append-many';
import { checkExpected, EventStoreUnavailableError, KeyAlreadyClaimedError, WrongExpectedVersionError } from '../errors';
import type {
  AppendOptions,
  AppendRequest,
  AppendResult,
  BatchHandler,
  EventStore,
  EventToAppend,
  ExpectedRevision,
  ReadAllOptions,
  ReadStreamOptions,
  Snapshot,
  SnapshotStore,
  StoredEvent,
  SubscribeOptions,
  Subscription,
} from '../port';
import { decodeResult, encodeResult, EventRow, prepareEvents, rowToEvent } from '../serialization';
import { CatchUpSubscription, sleep } from '../subscription';

/**
 * Schema, created on open under an advisory lock. JSON is stored as TEXT (byte-exact round trips,
 * `\u0000` allowed, no key reordering); times are BIGINT epoch milliseconds from the injected clock.
 */
export const POSTGRES_EVENT_STORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id          TEXT    NOT NULL,
  stream_id   TEXT    NOT NULL,
  revision    BIGINT  NOT NULL,
  type        TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at BIGINT  NOT NULL,
  CONSTRAINT events_id_key UNIQUE (id),
  CONSTRAINT events_stream_revision_key UNIQUE (stream_id, revision)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key         TEXT   NOT NULL,
  stream_id   TEXT   NOT NULL,
  result      TEXT   NOT NULL,
  recorded_at BIGINT NOT NULL,
  CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key)
);
CREATE TABLE IF NOT EXISTS unique_keys (
  key        TEXT   NOT NULL,
  stream_id  TEXT   NOT NULL,
  claimed_at BIGINT NOT NULL,
  CONSTRAINT unique_keys_pkey PRIMARY KEY (key)
);
CREATE INDEX IF NOT EXISTS unique_keys_by_stream ON unique_keys (stream_id);
CREATE TABLE IF NOT EXISTS snapshots (
  stream_id      TEXT    NOT NULL PRIMARY KEY,
  revision       BIGINT  NOT NULL,
  schema_version INTEGER NOT NULL,
  state          TEXT    NOT NULL
);
`;

/** The channel every append notifies after commit; the payload names the schema. */
export const POSTGRES_EVENTS_CHANNEL = 'idlc_events';

const COLS = 'position, id, stream_id, revision, type, version, data, metadata, recorded_at';

export interface PostgresEventStoreOptions {
  /**
   * How long a reader computing the safe head waits for in-flight appends before it settles for the
   * last safe head it knew (stale, never unsafe). While it waits, new appends queue behind it.
   */
  headLockTimeoutMs?: number;
  /** A subscription with nothing to do re-checks after this long even without a notification. */
  idleWaitMs?: number;
  /**
   * Test hook: runs inside the append transaction after the inserts, just before COMMIT (the
   * late-commit tests hold transactions open with it). It must not read from this store.
   */
  beforeCommit?: (append: { streamId: string; positions: number[]; backendPid: number }) => Promise<void> | void;
}

interface LockKeys {
  /** bigint key: writers share it for their whole transaction; the head reader takes it exclusively. */
  appends: string;
  /** bigint key serialising migrations of this schema. */
  migration: string;
  /** int4 class of the per-stream append locks (two-int4 key space). */
  streamClass: number;
  /** NOTIFY payload: this store's schema. */
  tag: string;
}

function hash64(text: string): string {
  return cryptoHash('sha256', text, 'buffer').readBigInt64BE(0).toString();
}

function hash32(text: string): number {
  return cryptoHash('sha256', text, 'buffer').readInt32BE(0);
}

/** Positions of appended events, in the order of their revisions. */
function inRevisionOrder(rows: readonly { position: string | number; revision: string | number }[]): number[] {
  return rows
    .map((r) => ({ p: Number(r.position), r: Number(r.revision) }))
    .sort((a, b) => a.r - b.r)
    .map((x) => x.p);
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function quoteIdent(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** Errors meaning the server could not be used, as opposed to a statement it refused. */
function isUnavailable(e: any): boolean {
  if (!e || e instanceof EventStoreUnavailableError) return false;
  const code: string | undefined = e.code;
  if (typeof code === 'string') {
    if (/^(08|53|57P)/.test(code)) return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  }
  const msg = String(e.message ?? '');
  return /Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end/i.test(msg);
}

function unavailable(e: any): never {
  if (isUnavailable(e)) throw new EventStoreUnavailableError(`postgres event store unavailable: ${e.message}`, e);
  throw e;
}

/**
 * LISTEN on a dedicated connection; reconnects with a backoff when it drops. Every notification for
 * this schema, every (re)connect and every drop bumps `generation`, which wakes the waiters: a
 * subscription that saw the generation change since its last read reads again at once, so a
 * notification arriving between its read and its wait is not lost either.
 */
class CommitNotifier {
  generation = 0;
  private client: PoolClient | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;
  private attempt = 0;
  private waiters = new Set<() => void>();
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly tag: string,
  ) {}

  /** Starts listening (idempotent); never rejects. */
  start(): void {
    if (this.closed || this.client || this.starting || this.retryTimer) return;
    this.starting = this.connect().finally(() => (this.starting = null));
  }

  get listening(): boolean {
    return this.client !== null;
  }

  private async connect(): Promise<void> {
    let client: PoolClient | null = null;
    try {
      client = await this.db.connect();
      const c = client;
      let dropped = false;
      const drop = (err?: unknown) => {
        if (dropped) return;
        dropped = true;
        c.removeListener('notification', onNotification);
        if (this.client === c) this.client = null;
        try {
          c.release(err instanceof Error ? err : new Error('listener connection ended'));
        } catch {
          // already released
        }
        this.bump();
        this.scheduleReconnect();
      };
      const onNotification = (n: { channel: string; payload?: string }) => {
        if (n.channel === POSTGRES_EVENTS_CHANNEL && n.payload === this.tag) this.bump();
      };
      c.on('error', drop);
      c.on('end', () => drop());
      c.on('notification', onNotification);
      await c.query(`LISTEN ${POSTGRES_EVENTS_CHANNEL}`);
      if (this.closed) {
        c.release(true);
        return;
      }
      this.client = c;
      this.attempt = 0;
      // Commits made while we were not listening: let every subscription look again.
      this.bump();
    } catch (e) {
      if (client) {
        try {
          client.release(e instanceof Error ? e : true);
        } catch {
          // already released by the drop handler
        }
      }
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.attempt++;
    const delay = Math.min(5000, 50 * 2 ** Math.min(this.attempt, 7));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start();
    }, delay);
    this.retryTimer.unref();
  }

  bump(): void {
    this.generation++;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Resolves on the next change after `seen`, or after `ms`. */
  wait(seen: number, ms: number): Promise<void> {
    if (this.generation !== seen || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.waiters.add(done);
    });
  }

  /** The listener's backend pid (tests terminate it to prove the reconnect). */
  get backendPid(): number | null {
    const pid = (this.client as unknown as { processID?: number } | null)?.processID;
    return typeof pid === 'number' ? pid : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.starting?.catch(() => undefined);
    const c = this.client;
    this.client = null;
    // Destroy rather than return it: a LISTENing connection must not go back to the pool.
    if (c) c.release(true);
    this.bump();
  }
}

/**
 * PostgreSQL adapter. Global positions come from an identity column, which hands out numbers at
 * insert time while transactions commit in another order (the late-commit gap). Readers therefore
 * never read past a *safe head*:
 *
 * - every append transaction first takes `pg_advisory_xact_lock_shared(appends)`, before its
 *   identity values are drawn, and holds it until it commits or rolls back;
 * - the safe head is `max(position)` read in a short transaction that holds the exclusive
 *   `pg_advisory_xact_lock(appends)`: it waits for every in-flight append to finish, so every
 *   position at or below that max is settled (committed or rolled back for good), and any later
 *   append draws a larger position;
 * - readAll, subscriptions and headPosition only return events at or below a safe head.
 *
 * A safe head once computed stays safe, so subscriptions reuse it until they pass it. A reader that
 * cannot get the lock within `headLockTimeoutMs` (a stuck writer) falls back to the last safe head
 * it knew: it delays, it never skips. Per-stream advisory locks serialise appends to one stream, so
 * the expected-revision check is exact and `any` appends never conflict; a unique violation on
 * (stream_id, revision) still maps to WrongExpectedVersionError.
 */
export class PostgresEventStore implements EventStore, SnapshotStore {
  readonly backend = 'postgres' as const;
  private knownSafeHead = 0;
  private headInFlight: Promise<number> | null = null;
  private headQueued: Promise<number> | null = null;
  private readonly notifier: CommitNotifier;
  private readonly subscriptions = new Set<CatchUpSubscription>();
  private closed = false;

  private constructor(
    private readonly db: PostgresDatabase,
    private readonly clock: Clock,
    private readonly keys: LockKeys,
    private readonly options: PostgresEventStoreOptions,
  ) {
    this.notifier = new CommitNotifier(db, keys.tag);
  }

  /** Opens the store, creating its tables when missing (idempotent, safe from several processes). */
  static async open(db: PostgresDatabase, clock: Clock, options: PostgresEventStoreOptions = {}): Promise<PostgresEventStore> {
    try {
      const where = await db.get<{ db: string; schema: string | null }>('SELECT current_database() AS db, current_schema() AS schema');
      const schema = db.options.schema ?? where?.schema;
      if (!schema) throw new Error('postgres event store: no schema of the search_path exists');
      const scope = `${where!.db}.${schema}`;
      const keys: LockKeys = {
        appends: hash64(`idlc:event-store:appends:${scope}`),
        migration: hash64(`idlc:event-store:migration:${scope}`),
        streamClass: hash32(`idlc:event-store:streams:${scope}`),
        tag: schema,
      };
      const client = await db.connect();
      let broken: unknown;
      const onError = (e: unknown) => (broken = e);
      client.on('error', onError);
      try {
        await client.query(`BEGIN; SELECT pg_advisory_xact_lock((${keys.migration})::bigint);`);
        if (db.options.schema) {
          // Only when missing, so a role without CREATE on the database can use an existing schema.
          const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
          if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
          await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
        }
        await client.query(POSTGRES_EVENT_STORE_SCHEMA);
        await client.query('COMMIT');
      } catch (e) {
        broken = broken ?? (await client.query('ROLLBACK').then(() => undefined, (r) => r));
        throw e;
      } finally {
        client.removeListener('error', onError);
        client.release(broken instanceof Error ? broken : undefined);
      }
      return new PostgresEventStore(db, clock, keys, options);
    } catch (e) {
      return unavailable(e);
    }
  }

  // --- appends ---------------------------------------------------------------------------------

  async append(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options: AppendOptions = {}): Promise<AppendResult> {
    if (!streamId) throw new TypeError('streamId is required');
    const prepared = prepareEvents(events);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.appendOnce(streamId, prepared, expected, options);
      } catch (e: any) {
        // Deadlocks between claims are resolved by the server aborting one side: nothing was
        // written, so run it again.
        if ((e?.code === '40P01' || e?.code === '40001') && attempt < 5) {
          await sleep(5 * attempt + Math.random() * 20);
          continue;
        }
        if (e?.code === '23505' && e.constraint === 'events_stream_revision_key') {
          const actual = await this.streamRevision(streamId);
          throw new WrongExpectedVersionError(streamId, expected, actual);
        }
        if (e?.code === '23505' && e.constraint === 'unique_keys_pkey') {
          // Not expected (claims use ON CONFLICT), kept as a safety net.
          const key = String(e.detail ?? '').match(/\(key\)=\((.*)\)/)?.[1] ?? '';
          throw new KeyAlreadyClaimedError(key, (await this.lookupKey(key)) ?? '');
        }
        if (e?.code === '23505' && e.constraint === 'idempotency_keys_pkey' && options.idempotencyKey) {
          // A concurrent append with the same key (on another stream) committed first.
          const seen = await this.lookupIdempotencyKey(options.idempotencyKey);
          if (seen) return seen;
        }
        return unavailable(e);
      }
    }
  }

  /**
   * A pooled connection for one append transaction, which `work` begins and ends: rolled back if
   * `work` throws, and discarded instead of returned to the pool if the connection broke.
   */
  private async inTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.db.connect();
    let broken: unknown;
    const onError = (e: unknown) => (broken = e);
    client.on('error', onError);
    try {
      return await work(client);
    } catch (e) {
      if (!broken) broken = await client.query('ROLLBACK').then(() => undefined, (r) => r);
      throw e;
    } finally {
      client.removeListener('error', onError);
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /** Commits an append transaction; one that stored events first notifies (delivered at commit, never for a rollback). */
  private async commit(client: PoolClient, appended: boolean): Promise<void> {
    await client.query(appended ? `SELECT pg_notify('${POSTGRES_EVENTS_CHANNEL}', ${quoteLiteral(this.keys.tag)}); COMMIT;` : 'COMMIT');
  }

  private async appendOnce(
    streamId: string,
    prepared: ReturnType<typeof prepareEvents>,
    expected: ExpectedRevision,
    options: AppendOptions,
  ): Promise<AppendResult> {
    const keyless = !options.claims?.length && !options.releases?.length;
    // The keyless path writes the expected revision into its SQL; prepareEvents has checked the versions.
    const literal = typeof expected !== 'number' || Number.isSafeInteger(expected);
    if (keyless && literal && prepared.length > 0) return this.appendKeyless(streamId, prepared, expected, options.idempotencyKey);
    return this.inTransaction(async (client) => {
      const key = options.idempotencyKey;
      const batch = (await client.query(this.openAppendSql(client, streamId, key))) as unknown as { rows: { rev: string | null; seen: string | null }[] }[];
      const state = batch[3].rows[0];
      if (state.seen) {
        await client.query('ROLLBACK');
        return decodeResult(state.seen);
      }
      const actual = state.rev === null ? -1 : Number(state.rev);
      checkExpected(streamId, expected, actual);
      const now = this.clock.now().getTime();

      const taken = await this.changeKeys(client, streamId, options, now);
      if (taken) throw new KeyAlreadyClaimedError(taken.key, taken.stream_id);

      let positions: number[] = [];
      if (prepared.length > 0) {
        // Its revision condition holds: just checked under the same locks. A key recorded meanwhile by
        // an append to another stream fails the idempotency insert (23505), answered by append().
        const inserted = await client.query<{ position: string; revision: string }>(this.insertEventsSql(client, streamId, prepared, expected, key, now, false));
        positions = inRevisionOrder(inserted.rows);
      }
      const result: AppendResult = { streamId, nextExpectedRevision: actual + prepared.length, positions, duplicate: false };
      if (key && prepared.length === 0) {
        await client.query('INSERT INTO idempotency_keys (key, stream_id, result, recorded_at) VALUES ($1, $2, $3, $4)', [key, streamId, encodeResult(result), now]);
      }
      await this.beforeCommit(client, streamId, positions);
      await this.commit(client, positions.length > 0);
      return result;
    });
  }

  /**
   * An append that claims and releases no key (a login recorded, an HR change: the engine's most
   * frequent), in one round trip instead of three: the opening statements, the conditional insert,
   * notify and commit in one query. A stream at another revision or a recorded idempotency key
   * inserts nothing, the empty transaction commits, and the answer comes from the revision and key
   * read just before under the same locks.
   */
  private async appendKeyless(streamId: string, prepared: ReturnType<typeof prepareEvents>, expected: ExpectedRevision, idempotencyKey?: string): Promise<AppendResult> {
    const hook = this.options.beforeCommit;
    const outcome = await this.inTransaction(async (client) => {
      const now = this.clock.now().getTime();
      const results = (await client.query(
        this.openAppendSql(client, streamId, idempotencyKey) +
          this.insertEventsSql(client, streamId, prepared, expected, idempotencyKey, now, true) +
          '; ' +
          // Notified only when the events went in; delivered at the commit.
          (hook
            ? ''
            : `SELECT pg_notify('${POSTGRES_EVENTS_CHANNEL}', ${quoteLiteral(this.keys.tag)}) WHERE EXISTS (SELECT 1 FROM events WHERE id = ${client.escapeLiteral(prepared[0].id)}); COMMIT;`),
      )) as unknown as { rows: Record<string, string | null>[] }[];
      const state = results[3].rows[0];
      const positions = inRevisionOrder(results[4].rows as { position: string; revision: string }[]);
      if (hook) {
        if (positions.length) await this.beforeCommit(client, streamId, positions);
        await this.commit(client, positions.length > 0);
      }
      const actual = state.rev === null ? -1 : Number(state.rev);
      return { positions, actual, seen: state.seen };
    });
    if (outcome.positions.length) return { streamId, nextExpectedRevision: outcome.actual + prepared.length, positions: outcome.positions, duplicate: false };
    if (outcome.seen) return decodeResult(outcome.seen);
    checkExpected(streamId, expected, outcome.actual);
    // The key was recorded by an append to another stream that committed between the read and the insert.
    const recorded = idempotencyKey === undefined ? null : await this.lookupIdempotencyKey(idempotencyKey);
    if (recorded) return recorded;
    throw new Error(`append to ${streamId} inserted nothing at revision ${outcome.actual}`);
  }

  /**
   * An append transaction's opening statements: begin, take the shared append lock (before any
   * identity value is drawn), then this stream's lock, then read the stream's revision and the
   * idempotency key, which the lock makes exact. A multi-statement query takes no parameters: the
   * values go as literals escaped by the driver.
   */
  private openAppendSql(client: PoolClient, streamId: string, idempotencyKey?: string): string {
    return (
      `BEGIN; SELECT pg_advisory_xact_lock_shared((${this.keys.appends})::bigint); ` +
      `SELECT pg_advisory_xact_lock(${this.keys.streamClass}, ${hash32(streamId)}); ` +
      `SELECT (SELECT max(revision) FROM events WHERE stream_id = ${client.escapeLiteral(streamId)}) AS rev, ` +
      `(SELECT result FROM idempotency_keys WHERE key = ${idempotencyKey === undefined ? 'NULL' : client.escapeLiteral(idempotencyKey)}) AS seen; `
    );
  }

  /**
   * One statement inserting a stream's events and recording the idempotency key with the positions
   * they got, returning (position, revision) per event. It inserts nothing unless the stream is at
   * the expected revision and, with `unlessRecorded`, the key is not recorded yet: under the
   * stream's lock those are the checks themselves. Values as literals escaped by the driver
   * (expected is a checked integer).
   */
  private insertEventsSql(
    client: PoolClient,
    streamId: string,
    prepared: ReturnType<typeof prepareEvents>,
    expected: ExpectedRevision,
    idempotencyKey: string | undefined,
    now: number,
    unlessRecorded: boolean,
  ): string {
    const lit = (v: string) => client.escapeLiteral(v);
    const s = lit(streamId);
    const key = idempotencyKey === undefined ? 'NULL' : lit(idempotencyKey);
    const accepts = expected === 'any' ? 'true' : expected === 'no_stream' ? 'rev = -1' : expected === 'stream_exists' ? 'rev >= 0' : `rev = ${expected}`;
    const rows = prepared.map((e, i) => `(${lit(e.id)}, ${lit(e.type)}, ${e.version}, ${lit(e.data)}, ${lit(e.metadata)}, ${i + 1})`).join(', ');
    return `WITH go AS (
         SELECT rev FROM (SELECT coalesce(max(revision), -1) AS rev FROM events WHERE stream_id = ${s}) AS cur
         WHERE ${accepts}${unlessRecorded ? ` AND NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE key = ${key})` : ''}),
       ins AS (
         INSERT INTO events (id, stream_id, revision, type, version, data, metadata, recorded_at)
         SELECT t.id, ${s}, go.rev + t.ord, t.type, t.version, t.data, t.metadata, ${now}
         FROM go, (VALUES ${rows}) AS t(id, type, version, data, metadata, ord)
         ORDER BY t.ord
         RETURNING position, revision),
       idem AS (
         INSERT INTO idempotency_keys (key, stream_id, result, recorded_at)
         SELECT ${key}, ${s}, json_build_object('s', ${s}::text, 'r', go.rev + ${prepared.length},
                  'p', (SELECT json_agg(position ORDER BY revision) FROM ins))::text, ${now}
         FROM go WHERE ${key}::text IS NOT NULL)
       SELECT position, revision FROM ins`;
  }

  /** The test hook between an append's writes and its commit. */
  private async beforeCommit(client: PoolClient, streamId: string, positions: number[]): Promise<void> {
    await this.options.beforeCommit?.({ streamId, positions, backendPid: (client as unknown as { processID: number }).processID });
  }

  /**
   * Releases, then claims, a stream's unique keys inside the append's transaction. Returns the first
   * key another stream owns (the caller then rolls back), or undefined.
   */
  private async changeKeys(client: PoolClient, streamId: string, options: AppendOptions, now: number): Promise<{ key: string; stream_id: string } | undefined> {
    const releases = [...new Set(options.releases ?? [])];
    if (releases.length > 0) {
      await client.query('DELETE FROM unique_keys WHERE key = ANY($1::text[]) AND stream_id = $2', [releases, streamId]);
    }
    const claims = [...new Set(options.claims ?? [])].sort();
    if (claims.length === 0) return undefined;
    // DO UPDATE (a no-op) locks an existing row and returns its owner, including a row that a
    // concurrent transaction committed after this statement started: one round trip, race-free.
    const owners = await client.query<{ key: string; stream_id: string }>(
      `INSERT INTO unique_keys (key, stream_id, claimed_at)
       SELECT k, $2, $3 FROM unnest($1::text[]) AS k ORDER BY k
       ON CONFLICT (key) DO UPDATE SET stream_id = unique_keys.stream_id
       RETURNING key, stream_id`,
      [claims, streamId, now],
    );
    return owners.rows.find((r) => r.stream_id !== streamId);
  }

  /**
   * The whole batch in one transaction and three round trips (plus two for each request that claims
   * keys, one for each that only releases): begin, lock every stream in a fixed order and read all
   * revisions and idempotency keys; one INSERT for every accepted request's events and idempotency
   * records; commit. A refused request (wrong revision, taken key) is left out with its error.
   */
  async appendMany(requests: readonly AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    checkAppendMany(requests);
    const prepared = requests.map((r): ReturnType<typeof prepareEvents> | Error => {
      try {
        return prepareEvents(r.events);
      } catch (e) {
        return e as Error;
      }
    });
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.appendManyOnce(requests, prepared);
      } catch (e: any) {
        // A deadlock, or a key recorded or stream written by a transaction that committed after our
        // reads: nothing was written; the next attempt reads again and answers those as they are now.
        if ((e?.code === '40P01' || e?.code === '40001' || e?.code === '23505') && attempt < 5) {
          await sleep(5 * attempt + Math.random() * 20);
          continue;
        }
        return unavailable(e);
      }
    }
  }

  private async appendManyOnce(
    requests: readonly AppendRequest[],
    prepared: (ReturnType<typeof prepareEvents> | Error)[],
  ): Promise<PromiseSettledResult<AppendResult>[]> {
    return this.inTransaction(async (client) => {
      const out = new Array<PromiseSettledResult<AppendResult>>(requests.length);
      const literals = (xs: string[]) => (xs.length ? `ARRAY[${xs.map((x) => client.escapeLiteral(x)).join(',')}]::text[]` : `'{}'::text[]`);
      const streams = requests.map((r) => r.streamId);
      const keys = requests.map((r) => r.options?.idempotencyKey).filter((k): k is string => k !== undefined);
      // The same order in every batch, so two batches sharing streams queue instead of dead-locking
      // (unnest hands the aggregate the locks in array order).
      const locks = [...new Set(streams.map(hash32))].sort((a, b) => a - b);
      const batch = (await client.query(
        `BEGIN; SELECT pg_advisory_xact_lock_shared((${this.keys.appends})::bigint); ` +
          `SELECT count(pg_advisory_xact_lock(${this.keys.streamClass}, h)) FROM unnest(ARRAY[${locks.join(',')}]::int[]) AS h; ` +
          `SELECT s, (SELECT max(revision) FROM events WHERE stream_id = s) AS rev FROM unnest(${literals(streams)}) AS s; ` +
          `SELECT key, result FROM idempotency_keys WHERE key = ANY(${literals(keys)});`,
      )) as unknown as { rows: any[] }[];
      const revisions = new Map<string, number>(batch[3].rows.map((r: { s: string; rev: string | null }) => [r.s, r.rev === null ? -1 : Number(r.rev)]));
      const seen = new Map<string, string>(batch[4].rows.map((r: { key: string; result: string }) => [r.key, r.result]));
      const accepted: number[] = [];
      requests.forEach((r, i) => {
        const events = prepared[i];
        if (events instanceof Error) return void (out[i] = { status: 'rejected', reason: events });
        const key = r.options?.idempotencyKey;
        if (key !== undefined && seen.has(key)) return void (out[i] = { status: 'fulfilled', value: decodeResult(seen.get(key)!) });
        try {
          checkExpected(r.streamId, r.expected, revisions.get(r.streamId) ?? -1);
          accepted.push(i);
        } catch (reason) {
          out[i] = { status: 'rejected', reason };
        }
      });
      const now = this.clock.now().getTime();
      const kept: number[] = [];
      for (const i of accepted) {
        const { streamId, options = {} } = requests[i];
        const claiming = (options.claims ?? []).length > 0;
        // A taken key refuses this request alone: its releases are undone with it.
        if (claiming) await client.query('SAVEPOINT claim');
        const taken = await this.changeKeys(client, streamId, options, now);
        if (taken) {
          await client.query('ROLLBACK TO SAVEPOINT claim');
          out[i] = { status: 'rejected', reason: new KeyAlreadyClaimedError(taken.key, taken.stream_id) };
          continue;
        }
        kept.push(i);
      }
      const ev = { ids: [] as string[], streams: [] as string[], revisions: [] as number[], types: [] as string[], versions: [] as number[], data: [] as string[], metadata: [] as string[] };
      const idem = { keys: [] as string[], streams: [] as string[], next: [] as number[] };
      for (const i of kept) {
        const { streamId, options } = requests[i];
        const actual = revisions.get(streamId) ?? -1;
        (prepared[i] as ReturnType<typeof prepareEvents>).forEach((e, k) => {
          ev.ids.push(e.id);
          ev.streams.push(streamId);
          ev.revisions.push(actual + 1 + k);
          ev.types.push(e.type);
          ev.versions.push(e.version);
          ev.data.push(e.data);
          ev.metadata.push(e.metadata);
        });
        if (options?.idempotencyKey !== undefined) {
          idem.keys.push(options.idempotencyKey);
          idem.streams.push(streamId);
          idem.next.push(actual + (prepared[i] as unknown[]).length);
        }
      }
      const inserted = new Map<string, { position: string; revision: string }[]>();
      if (ev.ids.length || idem.keys.length) {
        // Each idempotency record is written with the positions its stream's events got. Data and
        // metadata, JSON texts already, go as one JSON array each: the driver would escape every
        // quote in them for a text[] literal (4 to 6 µs an event, most of a firing's bind), and a
        // json value's elements come back as the exact text given.
        const rows = await client.query<{ position: string; stream_id: string; revision: string }>(
          `WITH ins AS (
             INSERT INTO events (id, stream_id, revision, type, version, data, metadata, recorded_at)
             SELECT t.id, t.stream_id, t.revision, t.type, t.version, t.data::text, t.metadata::text, $8
             FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), unnest($3::bigint[]), unnest($4::text[]), unnest($5::int[]),
                             json_array_elements($6::json), json_array_elements($7::json))
                  WITH ORDINALITY AS t(id, stream_id, revision, type, version, data, metadata, ord)
             ORDER BY t.ord
             RETURNING position, stream_id, revision),
           idem AS (
             INSERT INTO idempotency_keys (key, stream_id, result, recorded_at)
             SELECT k.key, k.stream_id, json_build_object('s', k.stream_id, 'r', k.next,
                      'p', coalesce(json_agg(ins.position ORDER BY ins.revision) FILTER (WHERE ins.position IS NOT NULL), '[]'::json))::text, $8
             FROM unnest($9::text[], $10::text[], $11::bigint[]) AS k(key, stream_id, next)
             LEFT JOIN ins ON ins.stream_id = k.stream_id
             GROUP BY k.key, k.stream_id, k.next)
           SELECT position, stream_id, revision FROM ins`,
          [ev.ids, ev.streams, ev.revisions, ev.types, ev.versions, `[${ev.data.join(',')}]`, `[${ev.metadata.join(',')}]`, now, idem.keys, idem.streams, idem.next],
        );
        for (const r of rows.rows) {
          const list = inserted.get(r.stream_id) ?? [];
          list.push(r);
          inserted.set(r.stream_id, list);
        }
      }
      let any = false;
      for (const i of kept) {
        const { streamId } = requests[i];
        const mine = inRevisionOrder(inserted.get(streamId) ?? []);
        any ||= mine.length > 0;
        const actual = revisions.get(streamId) ?? -1;
        out[i] = { status: 'fulfilled', value: { streamId, nextExpectedRevision: actual + mine.length, positions: mine, duplicate: false, recordedAt: new Date(now) } };
        await this.beforeCommit(client, streamId, mine);
      }
      await this.commit(client, any);
      return out;
    });
  }

  // --- the safe head ---------------------------------------------------------------------------

  /**
   * A position at or below which every position is settled. Concurrent callers share one lock
   * round trip, but a caller never gets a head computed before it called (caughtUp relies on it).
   */
  private safeHead(): Promise<number> {
    if (!this.headInFlight) return this.startSafeHead();
    if (!this.headQueued) {
      const settled = this.headInFlight.then(
        () => undefined,
        () => undefined,
      );
      this.headQueued = settled.then(() => {
        this.headQueued = null;
        return this.startSafeHead();
      });
    }
    return this.headQueued;
  }

  private startSafeHead(): Promise<number> {
    const run: Promise<number> = this.computeSafeHead().finally(() => {
      if (this.headInFlight === run) this.headInFlight = null;
    });
    this.headInFlight = run;
    return run;
  }

  private async computeSafeHead(): Promise<number> {
    const client = await this.db.connect().catch(unavailable);
    let broken: unknown;
    const onError = (e: unknown) => (broken = e);
    client.on('error', onError);
    try {
      const timeout = Math.max(1, Math.floor(this.options.headLockTimeoutMs ?? 10_000));
      const results = (await client.query(
        `BEGIN; SET LOCAL lock_timeout = ${timeout}; SELECT pg_advisory_xact_lock((${this.keys.appends})::bigint); ` +
          `SELECT coalesce(max(position), 0) AS p FROM events; COMMIT;`,
      )) as unknown as { rows: { p: number }[] }[];
      const head = Number(results[3].rows[0].p);
      if (head > this.knownSafeHead) this.knownSafeHead = head;
      return this.knownSafeHead;
    } catch (e: any) {
      // The simple-query batch may have left the session inside a failed transaction: discard it.
      broken = broken ?? e ?? new Error('head query failed');
      if (e?.code === '55P03') return this.knownSafeHead; // lock timeout: stale but safe
      return unavailable(e);
    } finally {
      client.removeListener('error', onError);
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async headPosition(): Promise<number> {
    return this.safeHead();
  }

  // --- reads -----------------------------------------------------------------------------------

  private async readRange(from: number, to: number, max: number, prefix?: string): Promise<StoredEvent[]> {
    if (max <= 0 || from >= to) return [];
    const rows = prefix
      ? await this.db.all<EventRow>(
          `SELECT ${COLS} FROM events WHERE position > ? AND position <= ? AND starts_with(stream_id, ?) ORDER BY position LIMIT ?`,
          [from, to, prefix, max],
        )
      : await this.db.all<EventRow>(`SELECT ${COLS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`, [
          from,
          to,
          max,
        ]);
    return rows.map(rowToEvent);
  }

  async readAll(o: ReadAllOptions = {}): Promise<StoredEvent[]> {
    try {
      const head = await this.safeHead();
      return await this.readRange(o.fromPosition ?? 0, head, o.maxCount ?? 1000, o.streamPrefix);
    } catch (e) {
      return unavailable(e);
    }
  }

  async readStream(streamId: string, o: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    // One stream's events commit in revision order (per-stream lock), so no safe head is needed.
    try {
      const rows = await this.db.all<EventRow>(
        `SELECT ${COLS} FROM events WHERE stream_id = ? AND revision >= ? AND position <= ? AND recorded_at <= ?
         ORDER BY revision LIMIT ?`,
        [
          streamId,
          o.fromRevision ?? 0,
          o.toPosition ?? Number.MAX_SAFE_INTEGER,
          o.toRecordedAt ? o.toRecordedAt.getTime() : Number.MAX_SAFE_INTEGER,
          o.maxCount ?? null,
        ],
      );
      return rows.map(rowToEvent);
    } catch (e) {
      return unavailable(e);
    }
  }

  async readStreams(fromRevisions: ReadonlyMap<string, number>): Promise<Map<string, StoredEvent[]>> {
    const out = new Map<string, StoredEvent[]>();
    for (const id of fromRevisions.keys()) out.set(id, []);
    if (!out.size) return out;
    try {
      const rows = await this.db.all<EventRow>(
        `SELECT ${COLS} FROM unnest(?::text[], ?::int[]) AS wanted (s, r) JOIN events ON stream_id = wanted.s AND revision >= wanted.r
         ORDER BY stream_id, revision`,
        [[...fromRevisions.keys()], [...fromRevisions.values()]],
      );
      for (const r of rows) out.get(r.stream_id)!.push(rowToEvent(r));
      return out;
    } catch (e) {
      return unavailable(e);
    }
  }

  subscribeToAll(handler: BatchHandler, o: SubscribeOptions): Subscription {
    if (this.closed) throw new Error('postgres event store is closed');
    this.notifier.start();
    const prefix = o.streamPrefix;
    let bound = this.knownSafeHead;
    let seen = this.notifier.generation;
    const sub = new CatchUpSubscription(
      {
        read: async (from, max) => {
          seen = this.notifier.generation;
          // Reuse a safe head while behind it; an empty or short page is only ever the answer of a
          // fresh one, so "nothing left" always means nothing left.
          const first = from < bound ? await this.readRange(from, bound, max, prefix) : [];
          if (first.length >= max) return first;
          const old = bound;
          bound = Math.max(bound, await this.safeHead());
          if (bound <= old) return first;
          const rest = await this.readRange(Math.max(from, old), bound, max - first.length, prefix);
          return first.concat(rest);
        },
        head: async () => {
          const head = await this.safeHead();
          if (!prefix) return head;
          // Prefixed subscriptions only advance on their own events: report the last of them.
          const row = await this.db.get<{ p: number | null }>(
            'SELECT max(position) AS p FROM events WHERE position <= ? AND starts_with(stream_id, ?)',
            [head, prefix],
          );
          return Number(row?.p ?? 0);
        },
        waitForChange: (ms) => {
          this.notifier.start();
          return this.notifier.wait(seen, ms);
        },
      },
      handler,
      o.fromPosition,
      o.batchSize ?? 500,
      o.onError,
      this.options.idleWaitMs ?? 1000,
    );
    this.subscriptions.add(sub);
    const stop = sub.stop.bind(sub);
    sub.stop = async () => {
      this.subscriptions.delete(sub);
      await stop();
    };
    return sub;
  }

  /** True while the LISTEN connection is up (diagnostics and tests). */
  get listening(): boolean {
    return this.notifier.listening;
  }

  /** Backend pid of the LISTEN connection (tests terminate it to prove the reconnect). */
  get listenerBackendPid(): number | null {
    return this.notifier.backendPid;
  }

  async streamRevision(streamId: string): Promise<number> {
    try {
      const row = await this.db.get<{ r: number | null }>('SELECT max(revision) AS r FROM events WHERE stream_id = ?', [streamId]);
      return row?.r === null || row?.r === undefined ? -1 : Number(row.r);
    } catch (e) {
      return unavailable(e);
    }
  }

  async lookupKey(key: string): Promise<string | null> {
    try {
      const row = await this.db.get<{ stream_id: string }>('SELECT stream_id FROM unique_keys WHERE key = ?', [key]);
      return row?.stream_id ?? null;
    } catch (e) {
      return unavailable(e);
    }
  }

  async lookupIdempotencyKey(key: string): Promise<AppendResult | null> {
    try {
      const row = await this.db.get<{ result: string }>('SELECT result FROM idempotency_keys WHERE key = ?', [key]);
      return row ? decodeResult(row.result) : null;
    } catch (e) {
      return unavailable(e);
    }
  }

  // --- snapshots -------------------------------------------------------------------------------

  async loadSnapshots<S>(streamIds: readonly string[]): Promise<Map<string, Snapshot<S>>> {
    const out = new Map<string, Snapshot<S>>();
    if (!streamIds.length) return out;
    try {
      const rows = await this.db.all<{ stream_id: string; revision: number; schema_version: number; state: string }>(
        'SELECT stream_id, revision, schema_version, state FROM snapshots WHERE stream_id = ANY(?::text[])',
        [[...streamIds]],
      );
      for (const r of rows) out.set(r.stream_id, { streamId: r.stream_id, revision: Number(r.revision), schemaVersion: Number(r.schema_version), state: JSON.parse(r.state) });
      return out;
    } catch (e) {
      return unavailable(e);
    }
  }

  async loadSnapshot<S>(streamId: string): Promise<Snapshot<S> | null> {
    try {
      const row = await this.db.get<{ revision: number; schema_version: number; state: string }>(
        'SELECT revision, schema_version, state FROM snapshots WHERE stream_id = ?',
        [streamId],
      );
      return row
        ? { streamId, revision: Number(row.revision), schemaVersion: Number(row.schema_version), state: JSON.parse(row.state) }
        : null;
    } catch (e) {
      return unavailable(e);
    }
  }

  async saveSnapshot<S>(s: Snapshot<S>): Promise<void> {
    try {
      await this.db.run(
        `INSERT INTO snapshots (stream_id, revision, schema_version, state) VALUES (?, ?, ?, ?)
         ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, schema_version = excluded.schema_version, state = excluded.state
         WHERE excluded.revision > snapshots.revision`,
        [s.streamId, s.revision, s.schemaVersion, JSON.stringify(s.state)],
      );
    } catch (e) {
      unavailable(e);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.db.get('SELECT 1');
    } catch (e) {
      unavailable(e);
    }
  }

  /** Stops this store's subscriptions and its LISTEN connection; the pool belongs to its opener. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    await this.notifier.close();
  }
}
