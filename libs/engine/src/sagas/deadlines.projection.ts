import { canonicalJson, DEFAULT_LIFECYCLE, IDENTITY_STREAM_PREFIX, identityIdOf, IdentityState, LifecyclePolicy, nextDeadline } from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';
import { readIdentityStates } from '../projections/identities.projection';
import { BatchContext, Projection } from '../projections/projection';

/** Bump when the table's shape or the way rows are derived changes. */
const DEADLINES_SCHEMA_VERSION = 1;

/** A small stable number for a lifecycle policy (FNV-1a over its canonical JSON). */
export function policyFingerprint(p: LifecyclePolicy): number {
  let h = 0x811c9dc5;
  const s = canonicalJson(p);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 1_000_000;
}

export interface DeadlineRow {
  identityId: string;
  /** Epoch milliseconds. */
  dueAt: number;
  action: string;
  revision: number;
}

/**
 * The saga table: one row per identity with the next thing that happens to it without anyone
 * asking (activation, termination, deletion, inactivity warning or disable), derived from the
 * identity state with `nextDeadline`. It runs right after the identities projection in the same
 * transaction and reads the state that projection just wrote, so it never folds events itself.
 *
 * Rows are only ever replaced by a state of the same or a newer revision. A claim (claimed_by,
 * claimed_until) survives a rewrite that leaves the deadline unchanged and is dropped when the
 * deadline moves, so the moved deadline can be claimed again.
 *
 * The deadlines depend on the lifecycle policy as much as on the events, so the policy's
 * fingerprint is part of `version`: a changed INACTIVITY_DAYS or RETENTION_DAYS rebuilds this
 * table (and only this one) at the next start.
 */
export class DeadlinesProjection implements Projection {
  readonly name = 'deadlines';
  readonly version: number;
  readonly tables = ['deadlines'];
  readonly deferrableIndexes = ['deadlines_due', 'deadlines_claimed'];
  private readonly listeners = new Set<(earliestDueAt: number) => void>();

  constructor(private readonly policy: LifecyclePolicy = DEFAULT_LIFECYCLE) {
    this.version = DEADLINES_SCHEMA_VERSION * 1_000_000 + policyFingerprint(policy);
  }

  ddl(_d: Dialect): string {
    return `
CREATE TABLE IF NOT EXISTS deadlines (
  identity_id TEXT PRIMARY KEY,
  due_at BIGINT NOT NULL,
  action TEXT NOT NULL,
  revision INTEGER NOT NULL,
  claimed_by TEXT NULL,
  claimed_until BIGINT NULL
);
CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_at);
CREATE INDEX IF NOT EXISTS deadlines_claimed ON deadlines (claimed_until);
`;
  }

  /**
   * Called with the earliest due time written by a batch, so a scheduler can re-arm its timer.
   * The call happens inside the projection's transaction: listeners must not touch the database.
   */
  onScheduled(listener: (earliestDueAt: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async apply(events: StoredEvent[], tx: SqlExecutor, ctx?: BatchContext): Promise<void> {
    const ids = [...new Set(events.filter((e) => e.streamId.startsWith(IDENTITY_STREAM_PREFIX)).map((e) => identityIdOf(e.streamId)))];
    if (!ids.length) return;
    // The identities projection ran just before in this transaction: take the states it wrote from
    // the batch context, and read back only those it did not hand over.
    const known = ctx?.identityStates;
    const states = await readIdentityStates(tx, known ? ids.filter((id) => !known.has(id)) : ids);
    let earliest = Infinity;
    const upserts: unknown[][] = [];
    const unscheduled: unknown[][] = [];
    const unknown: unknown[][] = [];
    for (const id of ids) {
      const s = known?.get(id) ?? states.get(id);
      if (!s) {
        // The identities projection keeps no row for it (no identity events yet): nothing is scheduled.
        unknown.push([id]);
        continue;
      }
      const row = deadlineRow(s, this.policy);
      if (row) upserts.push(upsertParams(id, s.revision, row));
      else unscheduled.push([id, s.revision]);
      if (row && row.dueAt < earliest) earliest = row.dueAt;
    }
    await tx.runMany('DELETE FROM deadlines WHERE identity_id = ?', unknown);
    await tx.runMany(DELETE_DEADLINE, unscheduled);
    await tx.insertMany('deadlines', DEADLINE_COLUMNS, upserts, UPSERT_DEADLINE_TAIL);
    if (earliest !== Infinity) for (const l of this.listeners) l(earliest);
  }
}

/** The row an identity state calls for, or null when nothing is scheduled. */
export function deadlineRow(s: IdentityState, policy: LifecyclePolicy): DeadlineRow | null {
  const next = nextDeadline(s, policy);
  return next ? { identityId: s.identityId, dueAt: new Date(next.at).getTime(), action: next.action, revision: s.revision } : null;
}

/**
 * Upserts (or deletes) an identity's deadline as of `revision`; never goes back to an older
 * revision. The claim is kept only when the deadline itself is unchanged.
 */
export async function writeDeadline(tx: SqlExecutor, identityId: string, revision: number, row: DeadlineRow | null): Promise<void> {
  if (!row) await tx.run(DELETE_DEADLINE, [identityId, revision]);
  else await tx.run(UPSERT_DEADLINE, upsertParams(identityId, revision, row));
}

const DELETE_DEADLINE = 'DELETE FROM deadlines WHERE identity_id = ? AND revision <= ?';

const DEADLINE_COLUMNS = ['identity_id', 'due_at', 'action', 'revision'];

const UPSERT_DEADLINE_TAIL = `ON CONFLICT (identity_id) DO UPDATE SET
       claimed_by = CASE WHEN deadlines.due_at = excluded.due_at AND deadlines.action = excluded.action THEN deadlines.claimed_by ELSE NULL END,
       claimed_until = CASE WHEN deadlines.due_at = excluded.due_at AND deadlines.action = excluded.action THEN deadlines.claimed_until ELSE NULL END,
       due_at = excluded.due_at, action = excluded.action, revision = excluded.revision
     WHERE excluded.revision >= deadlines.revision`;

// A new row is unclaimed (claimed_by and claimed_until default to NULL).
const UPSERT_DEADLINE = `INSERT INTO deadlines (${DEADLINE_COLUMNS.join(', ')}) VALUES (?, ?, ?, ?)
     ${UPSERT_DEADLINE_TAIL}`;

const upsertParams = (identityId: string, revision: number, row: DeadlineRow): unknown[] => [identityId, row.dueAt, row.action, revision];
