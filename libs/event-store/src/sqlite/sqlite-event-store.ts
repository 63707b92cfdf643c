import type { Clock } from '@idlc/domain';
import type { SqliteDatabase } from '@idlc/sql';
import { appendSideBySide } from '../append-many';
import { checkExpected, KeyAlreadyClaimedError } from '../errors';
import type {
  AppendRequest,
  AppendOptions,
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
import { decodeResult, encodeResult, prepareEvents } from '../serialization';
import { CatchUpSubscription } from '../subscription';

export const SQLITE_EVENT_STORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    INTEGER PRIMARY KEY,
  id          TEXT    NOT NULL UNIQUE,
  stream_id   TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  type        TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream_id, revision)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key         TEXT PRIMARY KEY,
  stream_id   TEXT NOT NULL,
  result      TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS unique_keys (
  key        TEXT PRIMARY KEY,
  stream_id  TEXT NOT NULL,
  claimed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS unique_keys_by_stream ON unique_keys (stream_id);
CREATE TABLE IF NOT EXISTS snapshots (
  stream_id      TEXT PRIMARY KEY,
  revision       INTEGER NOT NULL,
  schema_version INTEGER NOT NULL,
  state          TEXT NOT NULL
);
`;

/** A row as one JSON array; data and metadata are stored as JSON text already. */
const ROW_AS_JSON = `'[' || position || ',' || json_quote(id) || ',' || json_quote(stream_id) || ',' || revision || ',' || json_quote(type) || ',' || version || ',' || recorded_at || ',' || data || ',' || metadata || ']'`;

function jsonRowToEvent(text: string): StoredEvent {
  const r = JSON.parse(text);
  return { id: r[1], position: r[0], streamId: r[2], revision: r[3], type: r[4], version: r[5], data: r[7], metadata: r[8], recordedAt: new Date(r[6]) };
}

/**
 * The embedded default. SQLite has one writer at a time, so commit order is position order and an
 * INTEGER PRIMARY KEY is a gap-safe global position. Appends run synchronously inside the shared
 * write mutex; subscribers are woken by an in-process signal, with a slow fallback check for
 * writes made by another process (the CLI) on the same file.
 */
export class SqliteEventStore implements EventStore, SnapshotStore {
  readonly backend = 'sqlite' as const;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: Clock,
  ) {}

  static async open(db: SqliteDatabase, clock: Clock): Promise<SqliteEventStore> {
    await db.exec(SQLITE_EVENT_STORE_SCHEMA);
    return new SqliteEventStore(db, clock);
  }

  private currentRevision(streamId: string): number {
    return this.db.valueSync<number | null>('SELECT max(revision) FROM events WHERE stream_id = ?', [streamId]) ?? -1;
  }

  /**
   * Appends that arrive while the writer is busy commit together (SqliteDatabase.writeGrouped), each
   * in its own savepoint: one append's conflict or taken key rolls back only that append.
   */
  append(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options: AppendOptions = {}): Promise<AppendResult> {
    return this.appendGrouped(streamId, events, expected, options);
  }

  /** Queued side by side, the appends join one group commit (each in its own savepoint). */
  appendMany(requests: readonly AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    // Not through append(), which a caller may have wrapped (metrics count appendMany on their own).
    return appendSideBySide(requests, (r) => this.appendGrouped(r.streamId, r.events, r.expected, r.options));
  }

  private appendGrouped(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options: AppendOptions = {}): Promise<AppendResult> {
    if (!streamId) return Promise.reject(new TypeError('streamId is required'));
    const prepared = prepareEvents(events);
    return this.db.writeGrouped(() => this.appendNow(streamId, prepared, expected, options)).then((result) => {
      if (result.positions.length > 0) this.db.events.emit('committed');
      return result;
    });
  }

  private appendNow(streamId: string, prepared: ReturnType<typeof prepareEvents>, expected: ExpectedRevision, options: AppendOptions): AppendResult {
    if (options.idempotencyKey) {
      const seen = this.db.getSync<{ result: string }>('SELECT result FROM idempotency_keys WHERE key = ?', [options.idempotencyKey]);
      if (seen) return decodeResult(seen.result);
    }
    // A new stream's first append reads nothing first: the (stream_id, revision) unique index refuses
    // a second revision 0, and every JIT login, hire and SCIM create appends to a new stream.
    const blind = expected === 'no_stream' && prepared.length > 0;
    const actual = blind ? -1 : this.currentRevision(streamId);
    if (!blind) checkExpected(streamId, expected, actual);
    const now = this.clock.now().getTime();
    // The events before the keys: a stream that exists is reported as such before a taken key.
    const positions: number[] = [];
    let revision = actual;
    for (const e of prepared) {
      revision++;
      positions.push(this.insertEvent(streamId, revision, e, now, blind && revision === 0));
    }
    for (const key of options.releases ?? []) {
      this.db.runSync('DELETE FROM unique_keys WHERE key = ? AND stream_id = ?', [key, streamId]);
    }
    for (const key of options.claims ?? []) {
      const owner = this.db.getSync<{ stream_id: string }>('SELECT stream_id FROM unique_keys WHERE key = ?', [key]);
      if (owner && owner.stream_id !== streamId) throw new KeyAlreadyClaimedError(key, owner.stream_id);
      if (!owner) this.db.runSync('INSERT INTO unique_keys (key, stream_id, claimed_at) VALUES (?, ?, ?)', [key, streamId, now]);
    }
    const result: AppendResult = { streamId, nextExpectedRevision: revision, positions, duplicate: false, recordedAt: new Date(now) };
    if (options.idempotencyKey) {
      this.db.runSync('INSERT INTO idempotency_keys (key, stream_id, result, recorded_at) VALUES (?, ?, ?, ?)', [
        options.idempotencyKey,
        streamId,
        encodeResult(result),
        now,
      ]);
    }
    return result;
  }

  /** Inserts one event; `first` of a stream appended without a read turns a taken revision 0 into the conflict it is. */
  private insertEvent(streamId: string, revision: number, e: ReturnType<typeof prepareEvents>[number], now: number, first: boolean): number {
    try {
      return Number(
        this.db.runSync('INSERT INTO events (id, stream_id, revision, type, version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
          e.id,
          streamId,
          revision,
          e.type,
          e.version,
          e.data,
          e.metadata,
          now,
        ]).lastInsertRowid,
      );
    } catch (error) {
      // Also a repeated event id; only an existing stream is a revision conflict.
      if (first && (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') checkExpected(streamId, 'no_stream', this.currentRevision(streamId));
      throw error;
    }
  }

  async readStream(streamId: string, o: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    // One JSON text per row, as readAll: a cold aggregate load (a saga firing, a login after the
    // cache forgot the identity) reads its whole tail through here.
    const texts = this.db.pluckAll<string>(
      `SELECT ${ROW_AS_JSON} FROM events WHERE stream_id = ? AND revision >= ? AND position <= ? AND recorded_at <= ?
       ORDER BY revision LIMIT ?`,
      [
        streamId,
        o.fromRevision ?? 0,
        o.toPosition ?? Number.MAX_SAFE_INTEGER,
        o.toRecordedAt ? o.toRecordedAt.getTime() : Number.MAX_SAFE_INTEGER,
        o.maxCount ?? -1,
      ],
    );
    return texts.map(jsonRowToEvent);
  }

  async readStreams(fromRevisions: ReadonlyMap<string, number>): Promise<Map<string, StoredEvent[]>> {
    const out = new Map<string, StoredEvent[]>();
    for (const id of fromRevisions.keys()) out.set(id, []);
    if (!out.size) return out;
    // The wanted streams as one bound JSON array: one statement whatever their number, and each
    // probes the (stream_id, revision) index.
    const texts = this.db.pluckAll<string>(
      `WITH wanted (s, r) AS (SELECT value ->> 0, value ->> 1 FROM json_each(?))
       SELECT ${ROW_AS_JSON} FROM wanted JOIN events ON stream_id = wanted.s AND revision >= wanted.r ORDER BY stream_id, revision`,
      [JSON.stringify([...fromRevisions])],
    );
    for (const t of texts) {
      const e = jsonRowToEvent(t);
      out.get(e.streamId)!.push(e);
    }
    return out;
  }

  async readAll(o: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const from = o.fromPosition ?? 0;
    const limit = o.maxCount ?? 1000;
    // One JSON text per row, parsed once: projection catch-up and rebuilds read every event through
    // here, and handing eight columns to JavaScript one by one costs more than the parse.
    const texts = o.streamPrefix
      ? this.db.pluckAll<string>(`SELECT ${ROW_AS_JSON} FROM events WHERE position > ? AND substr(stream_id, 1, ?) = ? ORDER BY position LIMIT ?`, [
          from,
          o.streamPrefix.length,
          o.streamPrefix,
          limit,
        ])
      : this.db.pluckAll<string>(`SELECT ${ROW_AS_JSON} FROM events WHERE position > ? ORDER BY position LIMIT ?`, [from, limit]);
    return texts.map(jsonRowToEvent);
  }

  subscribeToAll(handler: BatchHandler, o: SubscribeOptions): Subscription {
    return new CatchUpSubscription(
      {
        read: (from, max) => this.readAll({ fromPosition: from, maxCount: max, streamPrefix: o.streamPrefix }),
        head: () => this.headPosition(),
        waitForChange: (ms) =>
          new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              this.db.events.off('committed', done);
              resolve();
            };
            const timer = setTimeout(done, ms).unref();
            this.db.events.once('committed', done);
          }),
      },
      handler,
      o.fromPosition,
      o.batchSize ?? 500,
      o.onError,
    );
  }

  async headPosition(): Promise<number> {
    const row = await this.db.get<{ p: number | null }>('SELECT max(position) AS p FROM events');
    return row?.p ?? 0;
  }

  async streamRevision(streamId: string): Promise<number> {
    const row = await this.db.get<{ r: number | null }>('SELECT max(revision) AS r FROM events WHERE stream_id = ?', [streamId]);
    return row?.r ?? -1;
  }

  async lookupKey(key: string): Promise<string | null> {
    const row = await this.db.get<{ stream_id: string }>('SELECT stream_id FROM unique_keys WHERE key = ?', [key]);
    return row?.stream_id ?? null;
  }

  async lookupIdempotencyKey(key: string): Promise<AppendResult | null> {
    const row = await this.db.get<{ result: string }>('SELECT result FROM idempotency_keys WHERE key = ?', [key]);
    return row ? decodeResult(row.result) : null;
  }

  async loadSnapshot<S>(streamId: string): Promise<Snapshot<S> | null> {
    const row = await this.db.get<{ revision: number; schema_version: number; state: string }>(
      'SELECT revision, schema_version, state FROM snapshots WHERE stream_id = ?',
      [streamId],
    );
    return row ? { streamId, revision: row.revision, schemaVersion: row.schema_version, state: JSON.parse(row.state) } : null;
  }

  async loadSnapshots<S>(streamIds: readonly string[]): Promise<Map<string, Snapshot<S>>> {
    const out = new Map<string, Snapshot<S>>();
    if (!streamIds.length) return out;
    const rows = await this.db.all<{ stream_id: string; revision: number; schema_version: number; state: string }>(
      'SELECT stream_id, revision, schema_version, state FROM snapshots WHERE stream_id IN (SELECT value FROM json_each(?))',
      [JSON.stringify(streamIds)],
    );
    for (const r of rows) out.set(r.stream_id, { streamId: r.stream_id, revision: r.revision, schemaVersion: r.schema_version, state: JSON.parse(r.state) });
    return out;
  }

  async saveSnapshot<S>(s: Snapshot<S>): Promise<void> {
    await this.db.run(
      `INSERT INTO snapshots (stream_id, revision, schema_version, state) VALUES (?, ?, ?, ?)
       ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, schema_version = excluded.schema_version, state = excluded.state
       WHERE excluded.revision > snapshots.revision`,
      [s.streamId, s.revision, s.schemaVersion, JSON.stringify(s.state)],
    );
  }

  async ping(): Promise<void> {
    await this.db.get('SELECT 1');
  }

  async close(): Promise<void> {
    // The database is owned by whoever opened it (it also holds the read models).
  }
}
