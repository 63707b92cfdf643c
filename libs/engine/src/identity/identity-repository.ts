import {
  evolve,
  identityStream,
  IdentityEvent,
  IdentityState,
  initialState,
  STATE_SCHEMA_VERSION,
  toIdentityEvent,
} from '@idlc/domain';
import type { EventStore, Snapshot, SnapshotStore, StoredEvent } from '@idlc/event-store';
import { Lru } from '../common/lru';
import { GENESIS_HASH, headLinkHash, linkHash } from '../audit/hash-chain';

/** Folds stored events (upcast on the way) onto a state. */
export function foldStored(state: IdentityState, events: StoredEvent[]): IdentityState {
  let s = state;
  for (const e of events) {
    const ev = toIdentityEvent(e);
    if (ev) s = evolve(s, ev, e.recordedAt.toISOString(), e.revision);
    else s = { ...s, revision: e.revision };
  }
  return s;
}

/**
 * Loads identity aggregates without replaying whole streams on the hot path: an LRU of states, a
 * persisted snapshot every N events, and only the tail after it read from the store. The cache may
 * be stale when several processes write (PostgreSQL); appends carry the expected revision, so a
 * stale decision fails with a conflict and is retried on a refreshed state.
 */
export class IdentityRepository {
  private readonly cache: Lru<string, IdentityState>;
  /** Hash of each cached aggregate's last event (the hash chain's head), kept beside the state, not in it. */
  private readonly hashes: Lru<string, { revision: number; hash: string }>;
  /** Counts full-stream replays, so tests can prove the hot path does none. */
  fullReplays = 0;

  /** The appendsElsewhere mark at which each cached state was last found to be the stream's head. */
  private readonly verifiedAt: Lru<string, number>;

  constructor(
    private readonly store: EventStore,
    private readonly snapshots: SnapshotStore | null,
    cacheSize: number,
    private readonly snapshotEvery: number,
    /** See Persistence.appendsElsewhere: lets loadCurrent skip the head read while nobody else wrote. */
    private readonly appendsElsewhere?: () => number,
  ) {
    this.cache = new Lru(cacheSize);
    this.hashes = new Lru(cacheSize);
    this.verifiedAt = new Lru(cacheSize);
  }

  async load(identityId: string): Promise<IdentityState> {
    const cached = this.cache.get(identityId);
    if (cached) return cached;
    return this.refresh(identityId);
  }

  /**
   * The state as of the store's head, for decisions that may append nothing (a login within the
   * record interval, a refusal): a cached state is checked against the stream's head revision and
   * its tail read only when another process appended meanwhile, e.g. a worker's saga or HR consumer
   * disabling the account. Without this check such a decision would trust the cache until this
   * process's next append to the stream. The head read is skipped while the appendsElsewhere mark
   * is the one this state was last verified at (SQLite: no other connection has committed since).
   */
  async loadCurrent(identityId: string): Promise<IdentityState> {
    // Read before the store, so an append landing in between changes it and is caught next time.
    const mark = this.appendsElsewhere?.();
    const cached = this.cache.get(identityId);
    if (cached && mark !== undefined && this.verifiedAt.get(identityId) === mark) return cached;
    const current = cached && (await this.store.streamRevision(identityStream(identityId))) === cached.revision;
    const state = current ? cached : await this.refresh(identityId);
    if (mark !== undefined) this.verifiedAt.set(identityId, mark);
    return state;
  }

  /** Brings a state up to the store's head: from cache or snapshot, reading only the tail. */
  async refresh(identityId: string): Promise<IdentityState> {
    let base = this.cache.get(identityId);
    if (!base && this.snapshots) {
      const snap = await this.snapshots.loadSnapshot<IdentityState>(identityStream(identityId));
      if (snap && snap.schemaVersion === STATE_SCHEMA_VERSION) base = snap.state;
    }
    if (!base) {
      base = initialState(identityId);
      this.fullReplays++;
    }
    const tail = await this.store.readStream(identityStream(identityId), { fromRevision: base.revision + 1 });
    return this.advance(identityId, base, tail);
  }

  /**
   * Brings a batch's aggregates up to the store's head at once (the deadline scheduler, before a
   * claimed batch's commands run): the cold ones' snapshots in one read, then every stream's tail
   * in another, where loading each would take a snapshot read and a stream read apiece, and
   * checking each cached one a head read. Cached states this process knows to be current (the
   * SQLite mark) are not read. Afterwards each state is as current as `loadCurrent` would make it.
   */
  async preload(identityIds: Iterable<string>): Promise<void> {
    // No more than the cache holds: the rest would be evicted before their commands ran.
    const ids = [...new Set(identityIds)].slice(0, this.cache.max);
    // Read before the store, as in loadCurrent: an append landing in between changes it.
    const mark = this.appendsElsewhere?.();
    const stale = ids.filter((id) => mark === undefined || !this.cache.has(id) || this.verifiedAt.get(id) !== mark);
    if (!stale.length) return;
    const cold = stale.filter((id) => !this.cache.has(id));
    const snapshots = this.snapshots && cold.length ? await this.snapshots.loadSnapshots<IdentityState>(cold.map(identityStream)) : new Map<string, Snapshot<IdentityState>>();
    const bases = new Map<string, IdentityState>();
    for (const id of stale) {
      const cached = this.cache.get(id);
      const snap = snapshots.get(identityStream(id));
      bases.set(id, cached ?? (snap && snap.schemaVersion === STATE_SCHEMA_VERSION ? snap.state : initialState(id)));
    }
    const tails = await this.store.readStreams(new Map(stale.map((id) => [identityStream(id), bases.get(id)!.revision + 1])));
    for (const id of stale) {
      const base = bases.get(id)!;
      // A command of this process appended meanwhile: its cached state is at least as new.
      const cached = this.cache.get(id);
      if (cached && cached !== base) continue;
      if (base.revision < 0) this.fullReplays++;
      const state = this.advance(id, base, tails.get(identityStream(id)) ?? []);
      if (mark !== undefined && state.revision >= 0) this.verifiedAt.set(id, mark);
    }
  }

  /** Folds a stream's tail onto its base and caches the state, the hash chain's head and, every N events, a snapshot. */
  private advance(identityId: string, base: IdentityState, tail: StoredEvent[]): IdentityState {
    const state = foldStored(base, tail);
    if (state.revision >= 0) this.cache.set(identityId, state);
    const last = tail[tail.length - 1];
    if (last && typeof last.metadata?.hash === 'string') this.hashes.set(identityId, { revision: last.revision, hash: last.metadata.hash });
    else if (last) {
      // A legacy tail (written before chaining): its link needs the hash before it.
      const known = this.hashes.get(identityId);
      if (known?.revision === base.revision) {
        let h = known.hash;
        for (const e of tail) h = linkHash(e, h);
        this.hashes.set(identityId, { revision: last.revision, hash: h });
      }
    }
    if (tail.length >= this.snapshotEvery) void this.snapshot(state);
    return state;
  }

  /** Records the state after a successful append; snapshots when a multiple of N was crossed. */
  remember(before: IdentityState, after: IdentityState, lastHash?: string): void {
    this.cache.set(after.identityId, after);
    if (lastHash) this.hashes.set(after.identityId, { revision: after.revision, hash: lastHash });
    const every = this.snapshotEvery;
    if (Math.floor((after.revision + 1) / every) > Math.floor((before.revision + 1) / every)) void this.snapshot(after);
  }

  forget(identityId: string): void {
    this.cache.delete(identityId);
    this.hashes.delete(identityId);
    this.verifiedAt.delete(identityId);
  }

  clear(): void {
    this.cache.clear();
    this.hashes.clear();
    this.verifiedAt.clear();
  }

  /**
   * The hash of the state's last event, which the next append links to: from the cache when it
   * matches the state's revision, otherwise read back from the stream's last event.
   */
  async lastHash(state: IdentityState): Promise<string> {
    if (state.revision < 0) return GENESIS_HASH;
    const known = this.hashes.get(state.identityId);
    if (known && known.revision === state.revision) return known.hash;
    const hash = await headLinkHash(this.store, identityStream(state.identityId), state.revision);
    this.hashes.set(state.identityId, { revision: state.revision, hash });
    return hash;
  }

  /**
   * Persists the state as the identity's snapshot now, replacing any older one (an erasure
   * replaces a snapshot holding personal data with the erased state; an older snapshot still in
   * flight can never overwrite it, since snapshots only move forward).
   */
  async saveSnapshot(state: IdentityState): Promise<void> {
    if (!this.snapshots || state.revision < 0) return;
    await this.snapshots.saveSnapshot({ streamId: identityStream(state.identityId), revision: state.revision, schemaVersion: STATE_SCHEMA_VERSION, state });
  }

  private async snapshot(state: IdentityState): Promise<void> {
    if (!this.snapshots) return;
    try {
      await this.snapshots.saveSnapshot({
        streamId: identityStream(state.identityId),
        revision: state.revision,
        schemaVersion: STATE_SCHEMA_VERSION,
        state,
      });
    } catch {
      // A snapshot is an optimisation: losing one only means a longer tail next time.
    }
  }

  /** The state as it was at an instant, replayed from the stream (never from a snapshot that could lie). */
  async stateAt(identityId: string, at: Date): Promise<IdentityState> {
    const events = await this.store.readStream(identityStream(identityId), { toRecordedAt: at });
    return foldStored(initialState(identityId), events);
  }

  /** The full replay, for verification. */
  async replay(identityId: string): Promise<IdentityState> {
    return foldStored(initialState(identityId), await this.store.readStream(identityStream(identityId)));
  }
}

export type { IdentityEvent };
