import { IDENTITY_STREAM_PREFIX, identityIdOf, IdentityState } from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';

/**
 * What one projection hands the ones after it in the same batch (same transaction), so they need
 * not read back rows it has just written.
 */
export interface BatchContext {
  /**
   * The identities projection's states as of the end of the batch, for every identity it wrote: the
   * same value as JSON.parse of the `state` column it wrote.
   */
  identityStates?: Map<string, IdentityState>;
}

/**
 * A read model derived from the event store. apply() runs inside the runner's transaction together
 * with the checkpoint update, so each event takes effect exactly once even across crashes.
 *
 * apply() must leave the same rows whatever the batch boundaries are: the runner applies batches of
 * a thousand events when live and of tens of thousands when it rebuilds or catches up (bulk mode).
 */
export interface Projection {
  readonly name: string;
  /** Bump when the read model's shape or logic changes: the runner rebuilds it from zero. */
  readonly version: number;
  readonly tables: string[];
  /**
   * Secondary indexes (created by ddl()) that apply() itself never reads through. A bulk rebuild
   * from zero drops them and creates them once at the end, which is several times cheaper than
   * keeping them up to date row by row. ddl() must create them with IF NOT EXISTS.
   */
  readonly deferrableIndexes?: readonly string[];
  ddl(dialect: Dialect): string;
  apply(events: StoredEvent[], tx: SqlExecutor, ctx?: BatchContext): Promise<void>;
}

/**
 * Identities whose stream starts (revision 0) within `events`, before any other event of theirs in
 * it: no earlier event exists, so no read model can hold a row for them yet and a projection need
 * not look one up. In a rebuild that is nearly every identity of a batch.
 */
export function streamsStartingIn(events: readonly StoredEvent[]): Set<string> {
  // Several projections ask about the same batch array: answer from the first computation.
  const known = startingCache.get(events);
  if (known) return known;
  const seen = new Set<string>();
  const starting = new Set<string>();
  for (const e of events) {
    if (!e.streamId.startsWith(IDENTITY_STREAM_PREFIX)) continue;
    const id = identityIdOf(e.streamId);
    if (seen.has(id)) continue;
    seen.add(id);
    if (e.revision === 0) starting.add(id);
  }
  startingCache.set(events, starting);
  return starting;
}

const startingCache = new WeakMap<readonly StoredEvent[], Set<string>>();

/** `?, ?, ?` for n values. */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** BIGINT epoch milliseconds, or null. */
export const ms = (iso: string | undefined | null): number | null => (iso ? new Date(iso).getTime() : null);
