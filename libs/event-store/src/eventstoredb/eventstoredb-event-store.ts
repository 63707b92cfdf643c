import {
  ANY,
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  NotLeaderError,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  streamNameFilter,
  TimeoutError,
  UnavailableError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
} from '@eventstore/db-client';
import type { AllStreamResolvedEvent, AppendExpectedRevision, Position, StreamingRead } from '@eventstore/db-client';
import type { Clock } from '@idlc/domain';
import { createHash } from 'node:crypto';
import { newId } from '../ids';
import { appendSideBySide } from '../append-many';
import { checkExpected, EventStoreUnavailableError, KeyAlreadyClaimedError, WrongExpectedVersionError } from '../errors';
import type {
  AppendRequest,
  AppendOptions,
  AppendResult,
  BatchHandler,
  EventMetadata,
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
import { EventStoreDbSubscription } from './eventstoredb-subscription';

/*
 * EventStoreDB / KurrentDB adapter.
 *
 * STREAMS. One EventStoreDB stream per engine stream (`identity-<uuid>`, `scim-group-<id>`), named
 * `<streamPrefix><streamId>`; the prefix is empty by default, so stream ids pass through unchanged.
 * Next to them live helper streams, also under the prefix, that are never delivered as events:
 *   idlc-key-<sha256(key)>        unique-key reservation: KeyClaimed / KeyReleased events naming the owner
 *   idlc-idem-<sha256(key)>       idempotency record: one event holding the append result (NO_STREAM)
 *   idlc-eventid-<uuid>           reservation of a caller-supplied event id (see below)
 *   idlc-snapshot-<streamId>      aggregate snapshots, `$maxCount=1`
 * Every read ($all, subscriptions, head) keeps only this engine's streams: under the prefix, not a
 * helper, not a `$` system stream.
 *
 * POSITIONS. The global position is the event's commit position in `$all`, a byte offset in the
 * transaction log, as a number (`Number(commitPosition)`: exact below 2^53 bytes, about 9 PB). Every
 * event appended through gRPC is its own commit (commit == prepare == its log position), so positions
 * are unique and strictly increasing in commit order, but SPARSE: consecutive events differ by their
 * size in bytes, and helper and system records sit in between. Do not treat a position difference as
 * an event count (projection lag in "events" is really bytes on this backend). EventStoreDB has no
 * late-commit gap: readers only ever see the log up to the committed checkpoint, in log order.
 * Stream reads carry the same position only on server 22.6 or later, which this adapter requires.
 *
 * UNIQUE KEYS, IDEMPOTENCY, EVENT IDS: NOT ATOMIC. EventStoreDB has no transaction spanning streams.
 * An append runs these steps, each one an atomic single-stream write with an expected revision:
 *   1. idempotency key already recorded? -> return the recorded result (duplicate)
 *   2. claim each key: append KeyClaimed to its reservation stream with NO_STREAM, or with the exact
 *      revision of its last KeyReleased; a racing claimer gets a wrong-expected-version and re-reads
 *   3. reserve caller-supplied event ids the same way (EventStoreDB only deduplicates ids per stream)
 *   4. append the events with the caller's expected revision
 *   5. release keys (KeyReleased, only where this stream is the owner)
 *   6. record the idempotency key (NO_STREAM: the first record wins)
 * When step 2, 3 or 4 fails, the claims and reservations this call made are undone (KeyReleased),
 * except when step 4 failed with an unknown outcome (connection lost, timeout): then they stay.
 * A crash (or a lost connection) between steps leaves this behind:
 *   - between 2/3 and 4: claims owned by a stream that did not get its events. If that stream is still
 *     empty after `abandonedClaimMs` (default 5 min) the claim counts as abandoned and the next claimer
 *     takes it over; if the stream exists (a key claimed by an existing identity) the key stays with it
 *     until released (an append with no events and `releases: [key]` does that).
 *   - between 4 and 5: keys the stream meant to give up stay claimed by it, refusing other streams.
 *   - between 4 and 6: a retry with the same idempotency key is not seen as a duplicate and is decided
 *     again against the new state (engine commands are state-based, so usually a no-op). Likewise two
 *     concurrent appends with one idempotency key can both land when both use 'any'; with an exact
 *     expected revision, which is what the engine uses, only one wins the stream.
 * The SQL adapters do all of this in one transaction and have none of these windows.
 *
 * OTHER DIFFERENCES. Event types must not start with `$` (server-side filtering drops them). The
 * append result needs the positions of every appended event, so a successful append is followed by
 * one stream read of the appended range. Large events need the server's MaxAppendSize (default 1 MiB,
 * `EVENTSTORE_MAX_APPEND_SIZE`) raised.
 */

export interface EventStoreDbEventStoreOptions {
  /** Prepended to every stream name this store writes or reads, helper streams included. Default ''. */
  streamPrefix?: string;
  /** A key claim whose owner stream is still empty after this long is treated as abandoned. 0 never. */
  abandonedClaimMs?: number;
}

const HELPER = { key: 'idlc-key-', idem: 'idlc-idem-', eventId: 'idlc-eventid-', snapshot: 'idlc-snapshot-' } as const;
const HELPER_RE = /^idlc-(?:key|idem|eventid|snapshot)-/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What the server sends for a position it does not know (ulong.MaxValue). */
const NO_POSITION = 2n ** 64n - 1n;
const CLAIMED = 'KeyClaimed';
const RELEASED = 'KeyReleased';

/** How an event's metadata is stored: the caller's metadata untouched, next to what the port needs back. */
interface Envelope {
  recordedAt: string;
  schemaVersion: number;
  metadata: EventMetadata;
  /** Read by EventStoreDB's own correlation projections, if anyone runs them. */
  $correlationId?: string;
  $causationId?: string;
}

interface PreparedEvent {
  id: string;
  supplied: boolean;
  type: string;
  version: number;
  data: Record<string, unknown>;
  metadata: EventMetadata;
}

interface RecordedLike {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  created: Date;
  isJson: boolean;
  data: unknown;
  metadata: unknown;
  position?: Position;
}

interface Reservation {
  revision: bigint;
  type: string;
  key: string;
  owner: string;
  claimedAt?: string;
}

export class EventStoreDbEventStore implements EventStore, SnapshotStore {
  readonly backend = 'eventstoredb' as const;
  private readonly ns: string;
  private readonly abandonedClaimMs: number;
  private readonly subscriptions = new Set<EventStoreDbSubscription>();
  private closed = false;

  private constructor(
    private readonly client: EventStoreDBClient,
    private readonly clock: Clock,
    options: EventStoreDbEventStoreOptions,
  ) {
    this.ns = options.streamPrefix ?? '';
    if (this.ns.startsWith('$')) throw new TypeError('streamPrefix must not start with $');
    this.abandonedClaimMs = options.abandonedClaimMs ?? 5 * 60_000;
  }

  /**
   * `esdb://host:2113?tls=false` (or `kurrentdb://…`, rewritten for this client). Fails with
   * EventStoreUnavailableError when the server does not answer.
   */
  static async connect(connectionString: string, clock: Clock, options: EventStoreDbEventStoreOptions = {}): Promise<EventStoreDbEventStore> {
    const url = connectionString.replace(/^kurrentdb(\+discover)?:\/\//i, (_m, d: string | undefined) => `esdb${d ?? ''}://`);
    const client = EventStoreDBClient.connectionString(url);
    const store = new EventStoreDbEventStore(client, clock, options);
    try {
      await store.ping();
    } catch (e) {
      await client.dispose().catch(() => undefined);
      throw e;
    }
    return store;
  }

  // ---------------------------------------------------------------------------------------------
  // Appends

  /** No multi-stream transactions here: separate appends, a bounded number in flight. */
  appendMany(requests: readonly AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    // Not through append(), which a caller may have wrapped (metrics count appendMany on their own).
    return appendSideBySide(requests, (r) => this.appendOne(r.streamId, r.events, r.expected, r.options), 16);
  }

  append(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options: AppendOptions = {}): Promise<AppendResult> {
    return this.appendOne(streamId, events, expected, options);
  }

  private async appendOne(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options: AppendOptions = {}): Promise<AppendResult> {
    this.checkStreamId(streamId);
    const prepared = prepare(events);
    if (options.idempotencyKey) {
      const seen = await this.lookupIdempotencyKey(options.idempotencyKey);
      if (seen) return seen;
    }
    const claims = [...new Set(options.claims ?? [])];
    const releases = [...new Set(options.releases ?? [])].filter((k) => !claims.includes(k));
    const supplied = prepared.filter((e) => e.supplied).map((e) => e.id);

    const undo: (() => Promise<void>)[] = [];
    let appended = false;
    let result: AppendResult;
    try {
      // Checked up front only when a failure would leave writes to undo, or when nothing is appended
      // (then this is the only check). The append itself re-checks atomically.
      let actual = -2;
      if (claims.length > 0 || supplied.length > 0 || prepared.length === 0) {
        actual = await this.streamRevision(streamId);
        checkExpected(streamId, expected, actual);
      }
      for (const id of supplied) {
        const u = await this.claim(HELPER.eventId + id.toLowerCase(), id, streamId, (owner) =>
          Object.assign(new Error(`event id ${id} is already used by stream ${owner}`), { code: 'DUPLICATE_EVENT_ID' }),
        );
        if (u) undo.push(u);
      }
      for (const key of claims) {
        const u = await this.claim(HELPER.key + sha256(key), key, streamId, (owner) => new KeyAlreadyClaimedError(key, owner));
        if (u) undo.push(u);
      }
      const recordedAt = this.clock.now();
      if (prepared.length === 0) {
        result = { streamId, nextExpectedRevision: actual, positions: [], duplicate: false, recordedAt };
      } else {
        let next: number;
        try {
          next = await this.appendEvents(streamId, prepared, expected, recordedAt);
        } catch (e) {
          // Lost connection or timeout: the events may be in. Keeping the claims is the safe side
          // (if the stream stays empty, the claim is taken over once abandoned); undoing them is not.
          if (e instanceof EventStoreUnavailableError) appended = true;
          throw e;
        }
        appended = true;
        const positions = await this.positionsOf(streamId, next - prepared.length + 1, prepared);
        result = { streamId, nextExpectedRevision: next, positions, duplicate: false, recordedAt };
      }
    } catch (e) {
      // Nothing was appended: give back what this call claimed. Once the events are in, claims stay.
      if (!appended) for (const u of undo.reverse()) await u().catch(() => undefined);
      throw e;
    }

    // The events are in. What follows cannot be undone; a failure is reported as unavailable so the
    // caller's retry (same idempotency key) finds the state as it is now.
    try {
      for (const key of releases) await this.release(HELPER.key + sha256(key), streamId);
      if (options.idempotencyKey) await this.recordIdempotency(options.idempotencyKey, result);
    } catch (e) {
      throw new EventStoreUnavailableError(
        `eventstoredb: events appended to ${streamId}, but releasing keys or recording the idempotency key failed: ${e?.message ?? e}`,
        e,
      );
    }
    return result;
  }

  private async appendEvents(streamId: string, events: PreparedEvent[], expected: ExpectedRevision, recordedAt: Date): Promise<number> {
    const at = recordedAt.toISOString();
    const data = events.map((e) => {
      const envelope: Envelope = { recordedAt: at, schemaVersion: e.version, metadata: e.metadata };
      if (typeof e.metadata.correlationId === 'string') envelope.$correlationId = e.metadata.correlationId;
      if (typeof e.metadata.causationId === 'string') envelope.$causationId = e.metadata.causationId;
      return jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: envelope as unknown as Record<string, unknown> });
    });
    try {
      const r = await this.client.appendToStream(this.name(streamId), data, { expectedRevision: toEsdbExpected(expected) });
      return Number(r.nextExpectedRevision);
    } catch (e) {
      if (e instanceof EsdbWrongExpectedVersionError) {
        throw new WrongExpectedVersionError(streamId, expected, typeof e.actualVersion === 'bigint' ? Number(e.actualVersion) : -1);
      }
      throw wrap(e);
    }
  }

  /** Positions of events just appended at revisions first.., read back from the leader. */
  private async positionsOf(streamId: string, first: number, events: PreparedEvent[]): Promise<number[]> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const read = await collect(
          this.client.readStream(this.name(streamId), { fromRevision: BigInt(first), maxCount: events.length, requiresLeader: true }),
        );
        const mine = read.map((r) => r.event).filter((e): e is NonNullable<typeof e> => !!e);
        if (mine.length !== events.length || mine.some((e, i) => e.id !== events[i].id)) {
          throw new Error(`eventstoredb: read-back of ${streamId}@${first} did not return the appended events`);
        }
        return mine.map((e) => positionOf(e));
      } catch (e) {
        lastError = e;
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
      }
    }
    throw new EventStoreUnavailableError(`eventstoredb: events appended to ${streamId}, but their positions could not be read back`, lastError);
  }

  // ---------------------------------------------------------------------------------------------
  // Reservation streams (unique keys, caller-supplied event ids)

  /**
   * Makes `owner` the holder of reservation stream `helper`. Returns an undo when this call made the
   * claim, null when `owner` already held it; throws `conflict(holder)` when another stream holds it.
   */
  private async claim(helper: string, key: string, owner: string, conflict: (holder: string) => Error): Promise<(() => Promise<void>) | null> {
    const name = this.ns + helper;
    for (let attempt = 0; attempt < 20; attempt++) {
      const last = await this.lastReservation(name);
      if (last?.type === CLAIMED) {
        if (last.owner === owner) return null;
        if (!(await this.abandoned(last))) throw conflict(last.owner);
      }
      try {
        const r = await this.client.appendToStream(
          name,
          jsonEvent({ type: CLAIMED, data: { key, owner, claimedAt: this.clock.now().toISOString() } }),
          { expectedRevision: last ? last.revision : NO_STREAM },
        );
        const revision = r.nextExpectedRevision;
        return () => this.appendReleased(name, key, owner, revision);
      } catch (e) {
        if (e instanceof EsdbWrongExpectedVersionError) continue; // someone moved it first: look again
        throw wrap(e);
      }
    }
    throw new EventStoreUnavailableError(`eventstoredb: could not claim ${key}: too much contention`);
  }

  /** Gives up `helper` if `owner` holds it. */
  private async release(helper: string, owner: string): Promise<void> {
    const name = this.ns + helper;
    for (let attempt = 0; attempt < 20; attempt++) {
      const last = await this.lastReservation(name);
      if (!last || last.type !== CLAIMED || last.owner !== owner) return;
      try {
        await this.appendReleased(name, last.key, owner, last.revision);
        return;
      } catch (e) {
        if (e instanceof EsdbWrongExpectedVersionError) continue;
        throw wrap(e);
      }
    }
    throw new EventStoreUnavailableError(`eventstoredb: could not release ${name}: too much contention`);
  }

  private async appendReleased(name: string, key: string, owner: string, expectedRevision: bigint): Promise<void> {
    await this.client.appendToStream(
      name,
      jsonEvent({ type: RELEASED, data: { key, owner, releasedAt: this.clock.now().toISOString() } }),
      { expectedRevision },
    );
  }

  private async lastReservation(name: string): Promise<Reservation | null> {
    const e = await this.lastRecorded(name, true);
    if (!e) return null;
    const d = (e.data ?? {}) as { key?: unknown; owner?: unknown; claimedAt?: unknown };
    return {
      revision: e.revision,
      type: e.type,
      key: typeof d.key === 'string' ? d.key : '',
      owner: typeof d.owner === 'string' ? d.owner : '',
      claimedAt: typeof d.claimedAt === 'string' ? d.claimedAt : undefined,
    };
  }

  /** A claim left by a crash between claiming and appending: old, and its owner still has no events. */
  private async abandoned(r: Reservation): Promise<boolean> {
    if (this.abandonedClaimMs <= 0 || !r.claimedAt || !r.owner) return false;
    const age = this.clock.now().getTime() - new Date(r.claimedAt).getTime();
    if (!(age > this.abandonedClaimMs)) return false;
    return (await this.streamRevision(r.owner)) === -1;
  }

  async lookupKey(key: string): Promise<string | null> {
    const last = await this.lastReservation(this.ns + HELPER.key + sha256(key));
    return last?.type === CLAIMED && last.owner ? last.owner : null;
  }

  // ---------------------------------------------------------------------------------------------
  // Idempotency

  private async recordIdempotency(key: string, r: AppendResult): Promise<void> {
    try {
      await this.client.appendToStream(
        this.ns + HELPER.idem + sha256(key),
        jsonEvent({
          type: 'IdempotencyKeyRecorded',
          data: {
            key,
            streamId: r.streamId,
            nextExpectedRevision: r.nextExpectedRevision,
            positions: r.positions,
            recordedAt: r.recordedAt?.toISOString() ?? null,
          },
        }),
        { expectedRevision: NO_STREAM },
      );
    } catch (e) {
      if (e instanceof EsdbWrongExpectedVersionError) return; // a racing append recorded it first: that record stands
      throw wrap(e);
    }
  }

  async lookupIdempotencyKey(key: string): Promise<AppendResult | null> {
    const name = this.ns + HELPER.idem + sha256(key);
    const [first] = await this.readRaw(name, { fromRevision: START, maxCount: 1 });
    if (!first) return null;
    const d = first.data as { streamId: string; nextExpectedRevision: number; positions: number[] };
    // recordedAt is left out on purpose, as in the SQL adapters: a duplicate appended nothing now.
    return { streamId: d.streamId, nextExpectedRevision: d.nextExpectedRevision, positions: d.positions, duplicate: true };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** EventStoreDB reads one stream per call: the streams are read side by side. */
  async readStreams(fromRevisions: ReadonlyMap<string, number>): Promise<Map<string, StoredEvent[]>> {
    const read = await Promise.all([...fromRevisions].map(async ([id, from]) => [id, await this.readStream(id, { fromRevision: from })] as const));
    return new Map(read);
  }

  async readStream(streamId: string, o: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    if (o.maxCount !== undefined && o.maxCount <= 0) return [];
    const from = Math.max(0, o.fromRevision ?? 0);
    const until = o.toRecordedAt?.getTime();
    // Recorded times come from the injected clock and need not grow with revisions: filter, never stop.
    const serverMax = o.maxCount !== undefined && until === undefined ? o.maxCount : undefined;
    const read = this.client.readStream(this.name(streamId), {
      fromRevision: BigInt(from),
      direction: FORWARDS,
      ...(serverMax !== undefined ? { maxCount: serverMax } : {}),
    });
    const out: StoredEvent[] = [];
    let early = false;
    try {
      for await (const r of read) {
        if (!r.event) continue;
        const e = this.toStored(r.event, streamId);
        if (o.toPosition !== undefined && e.position > o.toPosition) {
          early = true; // positions grow with revisions: nothing later can qualify
          break;
        }
        if (until !== undefined && e.recordedAt.getTime() > until) continue;
        out.push(e);
        if (o.maxCount !== undefined && out.length >= o.maxCount) {
          early = true;
          break;
        }
      }
    } catch (e) {
      if (e instanceof StreamNotFoundError) return [];
      throw wrap(e);
    } finally {
      if (early) await read.cancel().catch(() => undefined);
    }
    return out;
  }

  async readAll(o: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const want = o.maxCount ?? 1000;
    if (want <= 0) return [];
    const prefix = o.streamPrefix ?? '';
    const out: StoredEvent[] = [];
    const page = Math.min(Math.max(want, 256), 4096);
    const after = o.fromPosition ?? 0;
    // The server's fromPosition is inclusive and the port's is exclusive: skip what is not after the cursor.
    let cursor: Position | null = after > 0 ? { commit: BigInt(after), prepare: BigInt(after) } : null;
    for (;;) {
      const batch: AllStreamResolvedEvent[] = await collect(this.client.readAll({ fromPosition: cursor ?? START, maxCount: page, direction: FORWARDS }));
      for (const r of batch) {
        const e = r.event;
        if (!e) continue;
        if (cursor && comparePositions(e.position, cursor) <= 0) continue;
        cursor = e.position;
        const id = this.visibleStreamId(e);
        if (id === null || !id.startsWith(prefix)) continue;
        out.push(this.toStored(e, id));
        if (out.length >= want) return out;
      }
      if (batch.length < page) return out;
    }
  }

  subscribeToAll(handler: BatchHandler, o: SubscribeOptions): Subscription {
    if (this.closed) throw new Error('eventstoredb: the event store is closed');
    const prefix = o.streamPrefix ?? '';
    const batchSize = Math.max(1, o.batchSize ?? 500);
    const serverPrefix = this.ns + prefix;
    // Server-side: a stream-name prefix when there is one, else everything but `$` system events.
    // Helper streams and anything else not ours are dropped on arrival.
    const filter = serverPrefix ? streamNameFilter({ prefixes: [serverPrefix] }) : excludeSystemEvents();
    const sub = new EventStoreDbSubscription(
      {
        open: (after) =>
          this.client.subscribeToAll(
            { fromPosition: after > 0 ? { commit: BigInt(after), prepare: BigInt(after) } : START, filter },
            { highWaterMark: Math.max(16, batchSize) },
          ),
        convert: (r) => {
          const e = r.event;
          if (!e) return null;
          const id = this.visibleStreamId(e);
          return id !== null && id.startsWith(prefix) ? this.toStored(e, id) : null;
        },
        head: () => this.head((id) => id.startsWith(prefix)),
      },
      handler,
      o.fromPosition,
      batchSize,
      o.onError,
      (s) => this.subscriptions.delete(s),
    );
    this.subscriptions.add(sub);
    return sub;
  }

  async headPosition(): Promise<number> {
    return this.head(() => true);
  }

  /** Newest event of this engine's streams matching `match`: `$all` read backwards, in growing pages. */
  private async head(match: (streamId: string) => boolean): Promise<number> {
    let page = 32;
    let cursor: Position | null = null;
    for (;;) {
      const batch: AllStreamResolvedEvent[] = await collect(this.client.readAll({ fromPosition: cursor ?? END, maxCount: page, direction: BACKWARDS }));
      for (const r of batch) {
        const e = r.event;
        if (!e) continue;
        if (cursor && comparePositions(e.position, cursor) >= 0) continue;
        cursor = e.position;
        const id = this.visibleStreamId(e);
        if (id !== null && match(id)) return positionOf(e);
      }
      if (batch.length < page || !cursor) return 0;
      page = Math.min(page * 4, 4096);
    }
  }

  async streamRevision(streamId: string): Promise<number> {
    const last = await this.lastRecorded(this.name(streamId));
    return last ? Number(last.revision) : -1;
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots

  async loadSnapshots<S>(streamIds: readonly string[]): Promise<Map<string, Snapshot<S>>> {
    const found = await Promise.all(streamIds.map((id) => this.loadSnapshot<S>(id)));
    return new Map(found.filter((s): s is Snapshot<S> => s !== null).map((s) => [s.streamId, s]));
  }

  async loadSnapshot<S>(streamId: string): Promise<Snapshot<S> | null> {
    const last = await this.lastRecorded(this.ns + HELPER.snapshot + streamId);
    if (!last) return null;
    const d = last.data as { revision: number; schemaVersion: number; state: S };
    return { streamId, revision: d.revision, schemaVersion: d.schemaVersion, state: d.state };
  }

  async saveSnapshot<S>(s: Snapshot<S>): Promise<void> {
    const name = this.ns + HELPER.snapshot + s.streamId;
    for (let attempt = 0; attempt < 10; attempt++) {
      const last = await this.lastRecorded(name, true);
      if (last && (last.data as { revision: number }).revision >= s.revision) return; // never replace a newer one
      try {
        await this.client.appendToStream(
          name,
          jsonEvent({ type: 'SnapshotTaken', data: { revision: s.revision, schemaVersion: s.schemaVersion, state: s.state as unknown } }),
          { expectedRevision: last ? last.revision : NO_STREAM },
        );
      } catch (e) {
        if (e instanceof EsdbWrongExpectedVersionError) continue;
        throw wrap(e);
      }
      // Only the newest snapshot is kept; the server scavenges the rest.
      if (!last) await this.client.setStreamMetadata(name, { maxCount: 1 }).catch(() => undefined);
      return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EventStoreUnavailableError('eventstoredb: no answer within 5 s')), 5000);
      timer.unref();
    });
    try {
      await Promise.race([collect(this.client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1 })), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    await this.client.dispose().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private name(streamId: string): string {
    return this.ns + streamId;
  }

  /**
   * The engine stream id of an event read from `$all`, or null when the event is not one this engine
   * delivers: system, helper and foreign streams, and `$` event types (tombstones, links), which the
   * server-side subscription filter drops too. readAll, subscriptions and the head all use this rule,
   * so a subscription's caughtUp() target is always an event it will deliver.
   */
  private visibleStreamId(e: { streamId: string; type: string }): string | null {
    if (!e.streamId.startsWith(this.ns) || e.type.startsWith('$')) return null;
    const id = e.streamId.slice(this.ns.length);
    if (!id || id.startsWith('$') || HELPER_RE.test(id)) return null;
    return id;
  }

  private checkStreamId(streamId: string): void {
    if (!streamId || typeof streamId !== 'string') throw new TypeError('streamId is required');
    if (streamId.startsWith('$') || HELPER_RE.test(streamId)) throw new TypeError(`stream id ${streamId} is reserved`);
  }

  private toStored(e: RecordedLike, streamId: string): StoredEvent {
    const env = envelopeOf(e.metadata);
    const recordedAt = env?.recordedAt ? new Date(env.recordedAt) : e.created;
    return {
      id: e.id,
      position: positionOf(e),
      streamId,
      revision: Number(e.revision),
      type: e.type,
      version: typeof env?.schemaVersion === 'number' ? env.schemaVersion : 1,
      data: e.isJson ? e.data : {},
      metadata: env?.metadata && typeof env.metadata === 'object' ? env.metadata : {},
      recordedAt: Number.isNaN(recordedAt.getTime()) ? e.created : recordedAt,
    };
  }

  /** The last event of a stream, or null when the stream does not exist. */
  private async lastRecorded(name: string, requiresLeader = false): Promise<RecordedLike | null> {
    const [last] = await this.readRaw(name, { fromRevision: END, direction: BACKWARDS, maxCount: 1, requiresLeader });
    return last ?? null;
  }

  private async readRaw(
    name: string,
    o: { fromRevision: typeof START | typeof END | bigint; direction?: typeof FORWARDS | typeof BACKWARDS; maxCount: number; requiresLeader?: boolean },
  ): Promise<RecordedLike[]> {
    const read = await collect(this.client.readStream(name, o));
    return read.map((r) => r.event).filter((e) => !!e) as unknown as RecordedLike[];
  }
}

function prepare(events: EventToAppend[]): PreparedEvent[] {
  const ids = new Set<string>();
  return events.map((e) => {
    if (!e.type || typeof e.type !== 'string') throw new TypeError('event type is required');
    if (e.type.startsWith('$')) throw new TypeError(`event ${e.type}: types starting with $ are reserved by EventStoreDB`);
    if (!Number.isInteger(e.version) || e.version < 1) throw new TypeError(`event ${e.type}: version must be an integer >= 1`);
    if (e.id !== undefined && !UUID_RE.test(e.id)) throw new TypeError(`event ${e.type}: id must be a UUID`);
    const id = (e.id ?? newId()).toLowerCase();
    if (ids.has(id)) throw Object.assign(new Error(`event id ${id} appears twice in one append`), { code: 'DUPLICATE_EVENT_ID' });
    ids.add(id);
    return { id, supplied: e.id !== undefined, type: e.type, version: e.version, data: e.data ?? {}, metadata: e.metadata ?? {} };
  });
}

function toEsdbExpected(expected: ExpectedRevision): AppendExpectedRevision {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'any') return ANY;
  if (expected === 'stream_exists') return STREAM_EXISTS;
  if (!Number.isInteger(expected) || expected < 0) throw new TypeError(`expected revision must be a non-negative integer, got ${expected}`);
  return BigInt(expected);
}

function positionOf(e: { position?: Position; streamId: string; revision: bigint }): number {
  const commit = e.position?.commit;
  if (commit === undefined || commit === NO_POSITION) {
    throw new Error(`eventstoredb: no log position for ${e.streamId}@${e.revision}: EventStoreDB 22.6 or later is required`);
  }
  if (commit > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`eventstoredb: log position ${commit} exceeds 2^53`);
  return Number(commit);
}

function comparePositions(a: Position, b: Position): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

function envelopeOf(metadata: unknown): Partial<Envelope> | null {
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata) || metadata instanceof Uint8Array) return null;
  return metadata as Partial<Envelope>;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

async function collect<E>(read: StreamingRead<E>): Promise<E[]> {
  const out: E[] = [];
  try {
    for await (const e of read) out.push(e);
  } catch (e) {
    if (e instanceof StreamNotFoundError) return [];
    throw wrap(e);
  }
  return out;
}

/** Connection-level failures become EventStoreUnavailableError (the API answers 503); others pass through. */
function wrap(e: any): Error {
  if (e instanceof EventStoreUnavailableError) return e;
  const connectivity =
    e instanceof UnavailableError ||
    e instanceof DeadlineExceededError ||
    e instanceof TimeoutError ||
    e instanceof NotLeaderError ||
    e instanceof CancelledError ||
    (e && typeof e.code === 'number' && !('type' in e) && [1, 4, 14].includes(e.code));
  return connectivity ? new EventStoreUnavailableError(`eventstoredb unavailable: ${e?.message ?? e}`, e) : e;
}
