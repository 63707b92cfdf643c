import { randomUUID } from 'node:crypto';
import type { IdentityState } from '@idlc/domain';
import type { SqlExecutor } from '@idlc/sql';
import type { Engine } from '../engine';
import { CompareOptions, OrphanItem, ReconciliationReport, Reconciler } from './compare';
import type { HrSnapshot } from './snapshot';

/**
 * Every identity in the identities read model, keyset-paged by id: memory holds one page however
 * many identities there are.
 */
export async function* scanIdentities(db: SqlExecutor, pageSize = 500, onPage?: (count: number) => void): AsyncGenerator<IdentityState> {
  let after = '';
  let count = 0;
  for (;;) {
    const rows = await db.all<{ identity_id: string; state: string }>(
      'SELECT identity_id, state FROM identities WHERE identity_id > ? ORDER BY identity_id LIMIT ?',
      [after, pageSize],
    );
    for (const r of rows) yield JSON.parse(r.state) as IdentityState;
    count += rows.length;
    onPage?.(count);
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].identity_id;
  }
}

export interface ReconcileOptions extends Omit<CompareOptions, 'now'> {
  pageSize?: number;
  onProgress?: (scanned: number) => void;
}

/** The report of the engine's identities against an HR snapshot, as of the engine's clock. */
export async function reconcile(engine: Engine, snapshot: HrSnapshot, o: ReconcileOptions): Promise<ReconciliationReport> {
  // The report reads a projection: bring it up to the store's head first (waits for the live
  // subscription in a server, applies the rest itself in the CLI).
  await engine.projections.caughtUp();
  const reconciler = new Reconciler(snapshot, { ghostDays: o.ghostDays, file: o.file, now: engine.clock.now() });
  for await (const s of scanIdentities(engine.readDb, o.pageSize, o.onProgress)) reconciler.observe(s);
  return reconciler.report();
}

export interface AppliedItem {
  identityId: string;
  employeeId: string | null;
  /** disabled: this run disabled it; already-applied: an earlier run with this snapshot did; unchanged: nothing to do any more. */
  outcome: 'disabled' | 'already-applied' | 'unchanged' | 'refused';
  detail?: string;
}

export interface ApplyResult {
  correlationId: string;
  disabled: number;
  alreadyApplied: number;
  unchanged: number;
  refused: number;
  items: AppliedItem[];
}

/** One key per identity and snapshot: running the same apply again appends nothing. */
export const reconciliationIdempotencyKey = (snapshotSha256: string, identityId: string) => `reconciliation:${snapshotSha256}:${identityId}`;

/**
 * Disables the report's orphans (and nothing else) through the normal write path, reason
 * `reconciliation`. Each command is decided against the identity's current state, so an account
 * disabled meanwhile is left as it is.
 */
export async function applyReconciliation(
  engine: Engine,
  report: ReconciliationReport,
  o: { actor: string; correlationId?: string; onProgress?: (done: number) => void },
): Promise<ApplyResult> {
  const correlationId = o.correlationId ?? randomUUID();
  const items: AppliedItem[] = [];
  for (const [i, orphan] of report.orphans.entries()) {
    items.push(await disableOrphan(engine, report.snapshot.sha256, orphan, { actor: o.actor, correlationId }));
    o.onProgress?.(i + 1);
  }
  const count = (k: AppliedItem['outcome']) => items.filter((x) => x.outcome === k).length;
  return { correlationId, disabled: count('disabled'), alreadyApplied: count('already-applied'), unchanged: count('unchanged'), refused: count('refused'), items };
}

async function disableOrphan(engine: Engine, sha256: string, orphan: OrphanItem, o: { actor: string; correlationId: string }): Promise<AppliedItem> {
  const note = orphan.reason === 'no-hr-link' ? `no HR link; snapshot sha256:${sha256.slice(0, 12)}` : `not in HR snapshot sha256:${sha256.slice(0, 12)}`;
  const out = await engine.commands.execute(orphan.identityId, [{ kind: 'DisableAccount', reason: 'reconciliation', source: 'admin', note }], {
    idempotencyKey: reconciliationIdempotencyKey(sha256, orphan.identityId),
    metadata: { source: 'reconciliation', actor: o.actor, correlationId: o.correlationId },
  });
  const base = { identityId: orphan.identityId, employeeId: orphan.employeeId };
  if (out.duplicate) return { ...base, outcome: 'already-applied' };
  if (out.rejection) return { ...base, outcome: 'refused', detail: out.rejection.message };
  // A due effect (say, an inactivity disable) decided first may have disabled it for another reason.
  if (out.events.some((e) => e.type === 'AccountDisabled') && out.state.disabledReason === 'reconciliation') return { ...base, outcome: 'disabled' };
  const reason = out.state.disabledReason ? ` (${out.state.disabledReason})` : '';
  return { ...base, outcome: 'unchanged', detail: `account is ${out.state.account}${reason}` };
}
