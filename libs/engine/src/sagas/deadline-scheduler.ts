import type { Clock, LifecyclePolicy } from '@idlc/domain';
import { Mutex, settleEach, type SqlDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CommandOptions, CommandOutcome, IdentityCommands } from '../identity/identity-commands';
import { DeadlineRow, deadlineRow, DeadlinesProjection } from './deadlines.projection';

export interface DeadlineSchedulerOptions {
  /** Rows claimed per round trip. */
  batchSize?: number;
  /** How long a claim keeps other workers off a row; a dead worker's claims become claimable after it. */
  leaseMs?: number;
  /** Longest sleep, so a wall clock that jumped (NTP, a VM resumed) is noticed within it. */
  maxSleepMs?: number;
  /**
   * Commands in flight at once within a batch whose prefetch failed (a prefetched batch is appended
   * all at once). Default: 32 on SQLite, where their appends share group commits; 8 on PostgreSQL,
   * where each holds a connection of the pool that requests share.
   */
  concurrency?: number;
  /** After a command failed (store unavailable, hot identity), the row is retried this much later. */
  retryMs?: number;
  workerId?: string;
  /**
   * Called with a claimed batch's identities before their commands run; it must leave each one's
   * cached aggregate as current as a head check would (the engine: the repository's preload reads
   * the cold ones' snapshots, every stale stream's tail and the data keys' statuses for the whole
   * batch at once). When it resolves, the commands decide on those states without a head read or
   * an idempotency lookup of their own and are appended together (IdentityCommands.executeMany);
   * when it throws, each command reads what it needs itself.
   */
  prefetch?: (identityIds: string[]) => Promise<unknown>;
  /** Test hook: `saga-after-claim` SIGKILLs the process right after a claim commits. Defaults to IDLC_FAILPOINT. */
  failpoint?: string;
  onError?: (error: unknown, identityId?: string) => void;
}

interface Outcome {
  row: DeadlineRow;
  kind: 'fired' | 'noop' | 'failed';
  /** State revision the next deadline was computed from. */
  revision?: number;
  next?: DeadlineRow | null;
}

/** Highest value of an INTEGER column on both dialects. */
const MAX_REVISION = 2147483647;

/** The due rows nobody holds a live lease on, in due order (params: now, now): what a claim takes the first of. */
export const DUE_ROWS_SQL = 'SELECT identity_id FROM deadlines WHERE due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY due_at';

/**
 * Fires deadlines from the `deadlines` table: wakes at the earliest one (a timer computed from the
 * injected clock, re-armed when the projection schedules something earlier; no polling), claims due
 * rows with a lease and issues `ApplyDueEffects` through the identity write path.
 *
 * Exactly-once comes from the write path, not from the claim: the command is decided on the
 * stream's current state and appended with its expected revision, so a deadline that lost a race
 * (a login just before it, a second worker, a stale row) decides "nothing due" and appends nothing.
 * The claim only keeps workers from doing the same work twice; the idempotency key makes a retry of
 * one claim a cheap no-op.
 */
export class DeadlineScheduler {
  /** Deadlines claimed because they were due. */
  due = 0;
  /** Commands that appended events (an action happened). */
  fired = 0;
  /** Claimed deadlines that turned out to have nothing to do (moved, raced, already applied). */
  noops = 0;
  /** Commands that threw; their rows are retried after `retryMs`. */
  failures = 0;

  readonly workerId: string;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly maxSleepMs: number;
  private readonly concurrency: number;
  private readonly retryMs: number;
  private readonly failpoint?: string;
  private readonly runLock = new Mutex();

  private started = false;
  private stopping = false;
  private timer?: NodeJS.Timeout;
  /** performance.now() at which the armed timer fires. */
  private timerAt = Infinity;
  private armedDelay?: number;
  private ticking?: Promise<void>;
  private tickAgain = false;
  /** Earliest due time announced by the projection since the last tick started. */
  private hinted = Infinity;
  private readonly followUps = new Set<NodeJS.Timeout>();
  private unsubscribe?: () => void;
  private readonly onError: (error: unknown, identityId?: string) => void;

  constructor(
    private readonly db: SqlDatabase,
    private readonly commands: IdentityCommands,
    private readonly clock: Clock,
    private readonly policies: { lifecycle(): LifecyclePolicy },
    private readonly projection?: DeadlinesProjection,
    private readonly options: DeadlineSchedulerOptions = {},
  ) {
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.batchSize = options.batchSize ?? 500;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.maxSleepMs = options.maxSleepMs ?? 60_000;
    this.concurrency = options.concurrency ?? (db.dialect === 'sqlite' ? 32 : 8);
    this.retryMs = options.retryMs ?? 5_000;
    this.failpoint = options.failpoint ?? process.env.IDLC_FAILPOINT;
    this.onError = options.onError ?? ((e, id) => console.error(`deadline scheduler${id ? ` (identity ${id})` : ''}: ${(e as Error)?.message ?? e}`));
  }

  /** Delay of the currently armed timer, in ms (never more than maxSleepMs); undefined when idle. */
  get nextWakeInMs(): number | undefined {
    return this.timer ? this.armedDelay : undefined;
  }

  get running(): boolean {
    return this.started;
  }

  /** Starts the timer loop. On SQLite it first releases claims left by a previous run of this process. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.projection?.onScheduled((at) => this.hint(at));
    this.ticking = (async () => {
      try {
        // SQLite is the embedded, single-process store: a claim found at start belongs to a process
        // that died, so it need not wait out its lease. (Several workers share PostgreSQL: there,
        // claims expire by lease.)
        if (this.db.dialect === 'sqlite') await this.db.run('UPDATE deadlines SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL');
      } catch (e) {
        this.onError(e);
      }
    })().finally(() => {
      this.ticking = undefined;
      this.arm(0, true);
    });
  }

  async stop(): Promise<void> {
    this.started = false;
    this.stopping = true;
    this.unsubscribe?.();
    this.disarm();
    for (const t of this.followUps) clearTimeout(t);
    this.followUps.clear();
    await this.ticking?.catch(() => undefined);
    await this.runLock.run(() => undefined);
    this.stopping = false;
  }

  /** Re-evaluates now (after the clock was changed, or to skip the wait). */
  wake(): void {
    this.arm(0, true);
  }

  /**
   * Fires every deadline due now, in batches, and returns how many actions happened (commands that
   * appended events). Safe to call next to a running timer: runs are serialised. The next batch is
   * claimed and preloaded while the current one is appended and settled: two different sets of
   * identities (a claim skips leased rows), so the store's round trips of one overlap the
   * decisions of the other.
   */
  runDue(): Promise<number> {
    return this.runLock.run(async () => {
      let fired = 0;
      const claimNext = (): Promise<{ rows: DeadlineRow[]; preloaded: boolean }> | undefined => {
        if (this.stopping) return undefined;
        const next = this.claimDue(this.clock.now().getTime(), this.batchSize).then(async (rows) => {
          if (rows.length && this.failpoint === 'saga-after-claim') process.kill(process.pid, 'SIGKILL');
          return { rows, preloaded: rows.length > 0 && (await this.preload(rows)) };
        });
        // Awaited below; until then a failure must not count as unhandled.
        next.catch(() => undefined);
        return next;
      };
      let batch = await claimNext();
      while (batch?.rows.length) {
        const next = claimNext();
        // The claimed batch is fired even when stopping: its rows are already leased.
        fired += await this.fireBatch(batch.rows, batch.preloaded);
        batch = await next;
      }
      return fired;
    });
  }

  /** Claims up to `limit` rows due at `now` that nobody holds a live lease on. */
  async claimDue(now: number, limit: number): Promise<DeadlineRow[]> {
    const until = now + this.leaseMs;
    let rows: RawRow[];
    if (this.db.dialect === 'postgres') {
      // One statement, autocommitted. SKIP LOCKED: concurrent workers each take different rows
      // instead of queueing on the same ones. MATERIALIZED: the locking SELECT runs exactly once
      // (a subquery a plan could scan again would lock and claim more rows than the limit).
      rows = await this.db.all<RawRow>(
        `WITH due AS MATERIALIZED (${DUE_ROWS_SQL} LIMIT ? FOR UPDATE SKIP LOCKED)
         UPDATE deadlines d SET claimed_by = ?, claimed_until = ? FROM due WHERE d.identity_id = due.identity_id
         RETURNING d.identity_id, d.due_at, d.action, d.revision`,
        [now, now, limit, this.workerId, until],
      );
    } else {
      // SQLite: the transaction holds the single write lock, so one UPDATE claims atomically.
      rows = await this.db.transaction((tx) =>
        tx.all<RawRow>(
          `UPDATE deadlines SET claimed_by = ?, claimed_until = ?
           WHERE identity_id IN (${DUE_ROWS_SQL} LIMIT ?)
           RETURNING identity_id, due_at, action, revision`,
          [this.workerId, until, now, now, limit],
        ),
      );
    }
    this.due += rows.length;
    return rows
      .map((r) => ({ identityId: r.identity_id, dueAt: Number(r.due_at), action: r.action, revision: Number(r.revision) }))
      .sort((a, b) => a.dueAt - b.dueAt || (a.identityId < b.identityId ? -1 : 1));
  }

  /** Issues the command for each claimed row, then records each identity's next deadline and releases the claims. */
  async fireClaimed(rows: DeadlineRow[]): Promise<number> {
    return this.fireBatch(rows, await this.preload(rows));
  }

  /** Runs the prefetch for a claimed batch; true when the commands may decide on the preloaded states. */
  private async preload(rows: DeadlineRow[]): Promise<boolean> {
    if (!this.options.prefetch) return false;
    try {
      await this.options.prefetch(rows.map((r) => r.identityId));
      return true;
    } catch (e) {
      // Only a warm-up: each command then looks up what it needs itself (and reports its own failure).
      this.onError(e);
      return false;
    }
  }

  private async fireBatch(rows: DeadlineRow[], preloaded: boolean): Promise<number> {
    // Decided on the preloaded states, the whole batch goes to the store at once (on PostgreSQL one
    // transaction); otherwise each command reads what it needs, a bounded number at a time.
    const settled = preloaded
      ? await this.commands.executeMany(rows.map((r) => ({ identityId: r.identityId, ...this.command(r) })))
      : await settleEach(
          rows,
          (r) => {
            const { commands, options } = this.command(r);
            return this.commands.execute(r.identityId, commands, options);
          },
          this.concurrency,
        );
    const outcomes = rows.map((r, i) => this.outcome(r, settled[i]));
    await this.settle(outcomes, this.clock.now().getTime());
    return outcomes.filter((o) => o.kind === 'fired').length;
  }

  private command(row: DeadlineRow): { commands: [{ kind: 'ApplyDueEffects' }]; options: CommandOptions } {
    // The revision is part of the key: the same deadline recomputed from a later state (a moved
    // termination moved back) is a new decision, not a retry of this one.
    const key = `saga:${row.identityId}:${row.action}:${new Date(row.dueAt).toISOString()}:${row.revision}`;
    return {
      commands: [{ kind: 'ApplyDueEffects' }],
      options: {
        idempotencyKey: key,
        metadata: {
          source: 'saga',
          actor: 'deadline-scheduler',
          correlationId: key,
          causationId: key,
          deadline: { action: row.action, dueAt: new Date(row.dueAt).toISOString(), revision: row.revision },
          worker: this.workerId,
        },
      },
    };
  }

  private outcome(row: DeadlineRow, settled: PromiseSettledResult<CommandOutcome>): Outcome {
    if (settled.status === 'rejected') {
      this.failures++;
      this.onError(settled.reason, row.identityId);
      return { row, kind: 'failed' };
    }
    const out = settled.value;
    if (out.rejection?.code === 'not_found') {
      this.noops++;
      return { row, kind: 'noop', revision: MAX_REVISION, next: null };
    }
    const kind = out.events.length ? 'fired' : 'noop';
    if (kind === 'fired') this.fired++;
    else this.noops++;
    return { row, kind, revision: out.state.revision, next: deadlineRow(out.state, this.policies.lifecycle()) };
  }

  /**
   * Writes each identity's next deadline as its command left it (the projection writes the same row
   * from the same state when it gets there) and releases the claims, in one transaction per batch.
   * A row that is still due after the command stays leased, so a deadline that cannot make progress
   * is retried after the lease instead of spinning.
   */
  private async settle(outcomes: Outcome[], now: number): Promise<void> {
    const plan = settlePlan(outcomes, now);
    // Every row of the batch still due and unchanged: nothing to write.
    if (!plan.failed.length && !plan.released.length) return;
    if (this.db.dialect === 'sqlite') {
      // One writer: a statement per row inside one transaction costs no round trip.
      await this.db.transaction(async (tx) => {
        for (const id of plan.failed) await tx.run('UPDATE deadlines SET claimed_until = ? WHERE identity_id = ? AND claimed_by = ?', [now + this.retryMs, id, this.workerId]);
        for (const d of plan.deletes) await tx.run('DELETE FROM deadlines WHERE identity_id = ? AND revision <= ?', [d.id, d.revision]);
        for (const u of plan.updates) await tx.run(`${SETTLE_UPDATE} WHERE identity_id = ? AND revision <= ?`, [u.dueAt, u.action, u.revision, this.workerId, this.workerId, u.id, u.revision]);
        for (const id of plan.released) await tx.run(`${SETTLE_RELEASE} AND identity_id = ?`, [this.workerId, now, id]);
      });
      return;
    }
    // PostgreSQL: set-based statements (a handful of round trips for the whole batch instead of four
    // per row). The rows are locked first in identity order, so two schedulers settling overlapping
    // rows queue instead of dead-locking; a deadlock with a projection transaction (which locks in
    // event order) aborts this one, which is then run again: it is idempotent.
    const ids = [...plan.failed, ...plan.released].sort();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.db.transaction(async (tx) => {
          await tx.all('SELECT identity_id FROM deadlines WHERE identity_id = ANY(?::text[]) ORDER BY identity_id FOR UPDATE', [ids]);
          if (plan.failed.length) {
            await tx.run('UPDATE deadlines SET claimed_until = ? WHERE identity_id = ANY(?::text[]) AND claimed_by = ?', [now + this.retryMs, plan.failed, this.workerId]);
          }
          if (plan.deletes.length) {
            await tx.run(
              `DELETE FROM deadlines d USING unnest(?::text[], ?::int[]) AS o(id, revision)
               WHERE d.identity_id = o.id AND d.revision <= o.revision`,
              [plan.deletes.map((d) => d.id), plan.deletes.map((d) => d.revision)],
            );
          }
          if (plan.updates.length) {
            const u = plan.updates;
            await tx.run(
              `UPDATE deadlines d SET due_at = o.due_at, action = o.action, revision = o.revision,
                 claimed_by = CASE WHEN d.claimed_by = ? THEN NULL ELSE d.claimed_by END,
                 claimed_until = CASE WHEN d.claimed_by = ? THEN NULL ELSE d.claimed_until END
               FROM unnest(?::text[], ?::bigint[], ?::text[], ?::int[]) AS o(id, due_at, action, revision)
               WHERE d.identity_id = o.id AND d.revision <= o.revision`,
              [this.workerId, this.workerId, u.map((x) => x.id), u.map((x) => x.dueAt), u.map((x) => x.action), u.map((x) => x.revision)],
            );
          }
          if (plan.released.length) await tx.run(`${SETTLE_RELEASE} AND identity_id = ANY(?::text[])`, [this.workerId, now, plan.released]);
        });
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== '40P01' || attempt >= 5) throw e;
      }
    }
  }

  /** When the next row becomes claimable (epoch ms), or null when nothing is scheduled. */
  async nextEligibleAt(): Promise<number | null> {
    const free = await this.db.get<{ t: number }>(
      'SELECT due_at AS t FROM deadlines WHERE claimed_until IS NULL OR claimed_until < due_at ORDER BY due_at LIMIT 1',
    );
    const leased = await this.db.get<{ t: number }>(
      'SELECT claimed_until AS t FROM deadlines WHERE claimed_until IS NOT NULL AND claimed_until >= due_at ORDER BY claimed_until LIMIT 1',
    );
    const candidates = [free ? Number(free.t) : Infinity, leased ? Number(leased.t) + 1 : Infinity];
    const t = Math.min(...candidates);
    return t === Infinity ? null : t;
  }

  // --- timer -------------------------------------------------------------------------------------

  /** The projection scheduled something due at `at`: wake then if that is earlier than planned. */
  private hint(at: number, followUp = true): void {
    if (!this.started) return;
    if (at < this.hinted) this.hinted = at;
    const delay = at - this.clock.now().getTime();
    this.arm(delay, false);
    if (followUp && this.db.dialect === 'postgres' && delay < 250) {
      // The hint comes from inside the projection's transaction; on PostgreSQL another connection may
      // claim before that commits and see nothing. Look once more shortly after.
      const t = setTimeout(() => {
        this.followUps.delete(t);
        this.hint(at, false);
      }, 250);
      t.unref();
      this.followUps.add(t);
    }
  }

  /** Arms the timer `delayMs` from now (capped); unless forced, only if that is earlier than the armed one. */
  private arm(delayMs: number, force: boolean): void {
    if (!this.started) return;
    const d = Math.min(Math.max(0, Number.isFinite(delayMs) ? delayMs : this.maxSleepMs), this.maxSleepMs);
    const at = performance.now() + d;
    if (this.ticking) {
      // Re-armed when the running tick ends, which takes hints and wake-ups into account.
      if (force || d === 0) this.tickAgain = true;
      return;
    }
    if (!force && this.timer && at >= this.timerAt) return;
    this.disarm();
    this.timerAt = at;
    this.armedDelay = d;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.ticking = this.tick().finally(() => (this.ticking = undefined));
      void this.ticking.then(() => this.afterTick());
    }, d);
    // The timer alone must not keep a process alive (CLI commands, tests).
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private nextDelay = 0;
  private emptyRuns = 0;

  private async tick(): Promise<void> {
    this.hinted = Infinity;
    this.tickAgain = false;
    let claimed = -1;
    try {
      const before = this.due;
      await this.runDue();
      claimed = this.due - before;
    } catch (e) {
      this.onError(e);
    }
    if (!this.started) return;
    try {
      const next = await this.nextEligibleAt();
      const at = Math.min(next ?? Infinity, this.hinted);
      let delay = at === Infinity ? this.maxSleepMs : at - this.clock.now().getTime();
      if (delay <= 0 && claimed <= 0) {
        // Claimable now, yet this run claimed nothing (a timer a millisecond early, a row not yet
        // committed on another connection): look again soon, backing off rather than spinning.
        this.emptyRuns++;
        delay = Math.min(5000, 25 * 2 ** Math.min(this.emptyRuns, 8));
      } else {
        this.emptyRuns = 0;
      }
      this.nextDelay = delay;
    } catch (e) {
      this.onError(e);
      this.nextDelay = this.retryMs;
    }
  }

  private afterTick(): void {
    if (!this.started) return;
    const again = this.tickAgain;
    this.tickAgain = false;
    this.arm(again ? 0 : this.nextDelay, true);
  }
}

interface RawRow {
  identity_id: string;
  due_at: number | string;
  action: string;
  revision: number | string;
}

const SETTLE_UPDATE = `UPDATE deadlines SET due_at = ?, action = ?, revision = ?,
  claimed_by = CASE WHEN claimed_by = ? THEN NULL ELSE claimed_by END,
  claimed_until = CASE WHEN claimed_by = ? THEN NULL ELSE claimed_until END`;
/** The row may already hold a newer revision than ours: still give our claim back if it is not due. */
const SETTLE_RELEASE = 'UPDATE deadlines SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND due_at > ?';

interface SettlePlan {
  /** Commands that threw: their rows stay claimed until the retry time. */
  failed: string[];
  /** No deadline left: the row goes, unless it already holds a newer revision. */
  deletes: { id: string; revision: number }[];
  /** The next deadline, written unless the row already holds a newer revision. */
  updates: { id: string; revision: number; dueAt: number; action: string }[];
  /** Rows of deletes and updates: released afterwards when not due (covers rows a newer revision kept). */
  released: string[];
}

/** What settling a batch writes, row by row. */
function settlePlan(outcomes: Outcome[], now: number): SettlePlan {
  const plan: SettlePlan = { failed: [], deletes: [], updates: [], released: [] };
  for (const o of outcomes) {
    const id = o.row.identityId;
    if (o.kind === 'failed') {
      plan.failed.push(id);
      continue;
    }
    const next = o.next ?? null;
    if (next && next.dueAt <= now) continue;
    // Nothing happened and the deadline did not move (the clock stepped back between claim and
    // command): releasing it would re-claim it at once, so let the lease run out instead.
    if (next && o.kind === 'noop' && next.dueAt === o.row.dueAt && next.action === o.row.action) continue;
    if (!next) plan.deletes.push({ id, revision: o.revision! });
    else plan.updates.push({ id, revision: o.revision!, dueAt: next.dueAt, action: next.action });
    plan.released.push(id);
  }
  return plan;
}
