import { hash as cryptoHash } from 'node:crypto';
import { canonicalJson } from '@idlc/domain';
import type { EventMetadata, EventStore, EventToAppend, StoredEvent } from '@idlc/event-store';
import { Lru } from '../common/lru';

/**
 * Tamper-evident history: every event of a chained stream carries in its metadata `hash`, the
 * SHA-256 of a canonical serialisation of { streamId, revision, type, version, data, prevHash }, and
 * `prevHash`, the hash of the previous event of the same stream (GENESIS_HASH at revision 0).
 *
 * recordedAt is deliberately NOT hashed: the store assigns it inside the append transaction, after
 * the hash must already be in the metadata. Order is still covered (revision and prevHash link every
 * event to its predecessor); a rewritten timestamp is not detected by the chain.
 */
export const GENESIS_HASH = '0'.repeat(64);

/** Streams written with a chain: identities (IdentityCommands) and SCIM groups (GroupCommands). */
export const CHAINED_PREFIXES = ['identity-', 'scim-group-'];

export const isChainedStream = (streamId: string) => CHAINED_PREFIXES.some((p) => streamId.startsWith(p));

export interface HashedContent {
  streamId: string;
  revision: number;
  type: string;
  version: number;
  data: unknown;
  prevHash: string;
}

export function eventHash(c: HashedContent): string {
  const body = canonicalJson({ streamId: c.streamId, revision: c.revision, type: c.type, version: c.version, data: c.data, prevHash: c.prevHash });
  return cryptoHash('sha256', body, 'hex');
}

/**
 * Adds prevHash/hash to events about to be appended at firstRevision.. The data is hashed as it
 * will be stored (a JSON round trip), so a verifier reading it back computes the same bytes.
 */
export function chainEvents(
  streamId: string,
  firstRevision: number,
  prevHash: string,
  events: { type: string; version: number; data: unknown }[],
  metadata: EventMetadata,
): { events: EventToAppend[]; lastHash: string } {
  let prev = prevHash;
  const out = events.map((e, i) => {
    const data = JSON.parse(JSON.stringify(e.data ?? {}));
    const hash = eventHash({ streamId, revision: firstRevision + i, type: e.type, version: e.version, data, prevHash: prev });
    const appended: EventToAppend = { type: e.type, version: e.version, data, metadata: { ...metadata, prevHash: prev, hash } };
    prev = hash;
    return appended;
  });
  return { events: out, lastHash: prev };
}

/**
 * The hash a stored event passes on to its successor. Events written before chaining existed carry
 * none: their link is computed from their content and the link before them, so a legacy stream can
 * be extended with a chain without rewriting history.
 */
export function linkHash(e: StoredEvent, prevLink: string): string {
  return typeof e.metadata?.hash === 'string' ? e.metadata.hash : eventHash({ ...e, prevHash: prevLink });
}

/**
 * Hashes cover the data as stored (personal values encrypted), so chains are read from the raw
 * store even when handed the engine's decrypting view of it.
 */
function storedEvents(store: EventStore): EventStore {
  const raw = (store as { raw?: EventStore }).raw;
  return raw && typeof raw.readStream === 'function' ? raw : store;
}

/** The link hash after a whole stream (or up to a revision), read in pages. */
export async function streamLinkHash(store: EventStore, streamId: string, toRevision = Infinity, pageSize = 1000): Promise<{ hash: string; revision: number }> {
  store = storedEvents(store);
  let link = GENESIS_HASH;
  let revision = -1;
  for (;;) {
    const page = await store.readStream(streamId, { fromRevision: revision + 1, maxCount: pageSize });
    for (const e of page) {
      if (e.revision > toRevision) return { hash: link, revision };
      link = linkHash(e, link);
      revision = e.revision;
    }
    if (page.length < pageSize) return { hash: link, revision };
  }
}

/** The link hash of a stream's last event, reading only that event unless it predates chaining. */
export async function headLinkHash(store: EventStore, streamId: string, revision: number): Promise<string> {
  if (revision < 0) return GENESIS_HASH;
  store = storedEvents(store);
  const [last] = await store.readStream(streamId, { fromRevision: revision, maxCount: 1 });
  if (last && last.revision === revision && typeof last.metadata?.hash === 'string') return last.metadata.hash;
  return (await streamLinkHash(store, streamId, revision)).hash;
}

export interface ChainBreak {
  streamId: string;
  revision: number;
  position: number;
  /** hash_mismatch: the content no longer hashes to the stored hash (edited data, type, ...).
   *  prev_hash_mismatch: the stored prevHash is not the previous event's hash (reordered, replaced).
   *  missing_event: the previous revision is gone.  missing_hash: an unhashed event after chaining began. */
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'missing_event' | 'missing_hash';
  expected: string | null;
  found: string | null;
}

export interface VerifyResult {
  ok: boolean;
  /** Events of chained streams that were checked. */
  eventsChecked: number;
  /** Events written before chaining existed (no hash, linked by recomputation). */
  unhashed: number;
  /** Position of the last event read. */
  lastPosition: number;
  firstBreak: ChainBreak | null;
}

export interface VerifyOptions {
  /** Only this stream. */
  streamId?: string;
  pageSize?: number;
  /** How many stream tails to remember; beyond it the predecessor is re-read from the store. */
  tailCache?: number;
  onProgress?: (position: number, checked: number) => void;
}

interface Tail {
  revision: number;
  link: string;
  hashed: boolean;
}

/**
 * Recomputes chains over the whole store (or one stream) in pages, with bounded memory: stream tails
 * sit in an LRU and a forgotten predecessor is read back from the store. Stops at the first break.
 * Not detectable without an external anchor: truncating the newest events of a stream, or deleting a
 * whole stream (publish the head hashes elsewhere to cover that).
 */
export async function verifyChains(store: EventStore, options: VerifyOptions = {}): Promise<VerifyResult> {
  store = storedEvents(store);
  const pageSize = options.pageSize ?? 1000;
  const tails = new Lru<string, Tail>(options.tailCache ?? 10_000);
  const result: VerifyResult = { ok: true, eventsChecked: 0, unhashed: 0, lastPosition: 0, firstBreak: null };
  const fail = (e: StoredEvent, reason: ChainBreak['reason'], expected: string | null, found: unknown) => {
    result.ok = false;
    result.firstBreak = { streamId: e.streamId, revision: e.revision, position: e.position, reason, expected, found: typeof found === 'string' ? found : null };
  };

  const predecessor = async (e: StoredEvent): Promise<Tail | null> => {
    if (e.revision === 0) return { revision: -1, link: GENESIS_HASH, hashed: false };
    const t = tails.get(e.streamId);
    if (t && t.revision === e.revision - 1) return t;
    const [prev] = await store.readStream(e.streamId, { fromRevision: e.revision - 1, maxCount: 1 });
    if (!prev || prev.revision !== e.revision - 1) return null;
    const hashed = typeof prev.metadata?.hash === 'string';
    // A hashed predecessor was itself checked earlier in this pass (positions grow with revisions).
    return { revision: prev.revision, link: hashed ? (prev.metadata.hash as string) : (await streamLinkHash(store, e.streamId, prev.revision)).hash, hashed };
  };

  const check = async (e: StoredEvent): Promise<boolean> => {
    result.lastPosition = e.position;
    if (!isChainedStream(e.streamId)) return true;
    result.eventsChecked++;
    const prev = await predecessor(e);
    if (!prev) {
      fail(e, 'missing_event', null, null);
      return false;
    }
    const stored = e.metadata?.hash;
    if (typeof stored !== 'string') {
      if (prev.hashed) {
        fail(e, 'missing_hash', eventHash({ ...e, prevHash: prev.link }), null);
        return false;
      }
      result.unhashed++;
      tails.set(e.streamId, { revision: e.revision, link: eventHash({ ...e, prevHash: prev.link }), hashed: false });
      return true;
    }
    const recomputed = eventHash({ ...e, prevHash: typeof e.metadata.prevHash === 'string' ? e.metadata.prevHash : '' });
    if (recomputed !== stored) {
      fail(e, 'hash_mismatch', recomputed, stored);
      return false;
    }
    if (e.metadata.prevHash !== prev.link) {
      fail(e, 'prev_hash_mismatch', prev.link, e.metadata.prevHash);
      return false;
    }
    tails.set(e.streamId, { revision: e.revision, link: stored, hashed: true });
    return true;
  };

  if (options.streamId) {
    let from = 0;
    for (;;) {
      const page = await store.readStream(options.streamId, { fromRevision: from, maxCount: pageSize });
      for (const e of page) if (!(await check(e))) return result;
      options.onProgress?.(result.lastPosition, result.eventsChecked);
      if (page.length < pageSize) return result;
      from = page[page.length - 1].revision + 1;
    }
  }
  let position = 0;
  for (;;) {
    const page = await store.readAll({ fromPosition: position, maxCount: pageSize });
    for (const e of page) if (!(await check(e))) return result;
    if (page.length) position = page[page.length - 1].position;
    options.onProgress?.(position, result.eventsChecked);
    if (page.length < pageSize) return result;
  }
}
