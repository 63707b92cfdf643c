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
} from '@idlc/event-store';
import type { PersonalDataCipher } from './personal-data-cipher';

/**
 * The event store as every reader of the engine sees it: the one place where stored personal
 * values are decrypted (or read as ERASED_VALUE), before upcasting, folds, projections, audit
 * reads, exports and the Kafka publisher. Appends and everything else pass straight through.
 *
 * One stream (aggregate loads, history, state-at, one identity's export) is read strictly: a key
 * that is missing without having been destroyed fails that read. Reads across identities
 * (projections, Kafka, full exports) are lenient: such an identity's values stay encrypted and the
 * failure is reported, so one identity never blocks the others.
 *
 * Hash-chain verification must read the raw store: hashes are over the stored ciphertext.
 */
export class DecryptingEventStore implements EventStore, SnapshotStore {
  constructor(
    readonly raw: EventStore & SnapshotStore,
    readonly cipher: PersonalDataCipher,
  ) {}

  get backend(): EventStore['backend'] {
    return this.raw.backend;
  }

  append(streamId: string, events: EventToAppend[], expected: ExpectedRevision, options?: AppendOptions): Promise<AppendResult> {
    return this.raw.append(streamId, events, expected, options);
  }

  appendMany(requests: readonly AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    return this.raw.appendMany(requests);
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    return this.cipher.decrypt(await this.raw.readStream(streamId, options), 'strict');
  }

  /** Strict, as readStream: one call decrypts them all, so their keys are looked up together. */
  async readStreams(fromRevisions: ReadonlyMap<string, number>): Promise<Map<string, StoredEvent[]>> {
    const read = await this.raw.readStreams(fromRevisions);
    const out = new Map<string, StoredEvent[]>([...read.keys()].map((id) => [id, []]));
    for (const e of await this.cipher.decrypt([...read.values()].flat(), 'strict')) out.get(e.streamId)!.push(e);
    return out;
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    return this.cipher.decrypt(await this.raw.readAll(options), 'lenient');
  }

  subscribeToAll(handler: BatchHandler, options: SubscribeOptions): Subscription {
    return this.raw.subscribeToAll(async (batch) => handler(await this.cipher.decrypt(batch, 'lenient')), options);
  }

  headPosition(): Promise<number> {
    return this.raw.headPosition();
  }

  streamRevision(streamId: string): Promise<number> {
    return this.raw.streamRevision(streamId);
  }

  lookupKey(key: string): Promise<string | null> {
    return this.raw.lookupKey(key);
  }

  lookupIdempotencyKey(key: string): Promise<AppendResult | null> {
    return this.raw.lookupIdempotencyKey(key);
  }

  ping(): Promise<void> {
    return this.raw.ping();
  }

  close(): Promise<void> {
    return this.raw.close();
  }

  loadSnapshot<S>(streamId: string): Promise<Snapshot<S> | null> {
    return this.raw.loadSnapshot<S>(streamId);
  }

  loadSnapshots<S>(streamIds: readonly string[]): Promise<Map<string, Snapshot<S>>> {
    return this.raw.loadSnapshots<S>(streamIds);
  }

  saveSnapshot<S>(snapshot: Snapshot<S>): Promise<void> {
    return this.raw.saveSnapshot(snapshot);
  }
}
