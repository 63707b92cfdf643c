import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';

/**
 * A read model derived from the event store. apply() runs inside the runner's transaction together
 * with the checkpoint update, so each event takes effect exactly once even across crashes.
 */
export interface Projection {
  readonly name: string;
  /** Bump when the read model's shape or logic changes: the runner rebuilds it from zero. */
  readonly version: number;
  readonly tables: string[];
  ddl(dialect: Dialect): string;
  apply(events: StoredEvent[], tx: SqlExecutor): Promise<void>;
}

/** `?, ?, ?` for n values. */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** BIGINT epoch milliseconds, or null. */
export const ms = (iso: string | undefined | null): number | null => (iso ? new Date(iso).getTime() : null);
