import { RequireScope } from '../auth/scopes';
import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Engine, placeholders } from '@idlc/engine';
import { ApiJson, ApiProblems, ref } from '../common/openapi';
import { problem } from '../common/problem';

const WEEK = 7 * 86400_000;
const WEEKS = 12;
const STATUSES = ['pending', 'active', 'disabled', 'deleted'] as const;
// Joiners are hires and rehires, movers attribute changes, leavers terminations.
const FLOW: Record<string, 'joiners' | 'movers' | 'leavers'> = {
  IdentityHired: 'joiners',
  IdentityRehired: 'joiners',
  AttributesChanged: 'movers',
  IdentityTerminated: 'leavers',
};

/**
 * Joiners, movers and leavers per week since `from`, from the audit timeline through its
 * (type, recorded_at) index: the one query that reads that read model.
 */
export function weeklyFlowQuery(from: number): { sql: string; params: unknown[] } {
  const types = Object.keys(FLOW);
  // SQLite binds JS numbers as REAL: the CAST keeps the week index whole there, as BIGINT division does in PostgreSQL.
  const wk = `CAST((recorded_at - ?) / ${WEEK} AS INTEGER)`;
  return {
    sql: `SELECT type, ${wk} AS wk, count(*) AS n FROM audit_timeline
       WHERE recorded_at >= ? AND type IN (${placeholders(types.length)}) GROUP BY type, ${wk}`,
    params: [from, from, ...types, from],
  };
}

/** Monday 00:00 UTC of the week holding t. */
function weekStart(t: number): number {
  const d = new Date(t);
  const day = (d.getUTCDay() + 6) % 7;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day);
}

/** Read-only aggregates for the /ui dashboard and identity page, from the read models. */
@ApiTags('audit')
@ApiBearerAuth()
@RequireScope('audit:read')
@ApiProblems(401, 503)
@Controller('audit')
export class AuditDashboardController {
  constructor(private readonly engine: Engine) {}

  @Get('dashboard')
  @ApiOperation({ summary: 'Counts by status, joiners/movers/leavers per week (last 12), accounts due for inactivity disablement, projection lag' })
  @ApiJson(ref('Dashboard'))
  async dashboard() {
    const db = this.engine.readDb;
    const now = this.engine.clock.now().getTime();
    const counts: Record<string, number> = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const r of await db.all<{ account_status: string; n: number }>('SELECT account_status, count(*) AS n FROM identities GROUP BY account_status')) {
      counts[r.account_status] = Number(r.n);
    }
    const from = weekStart(now) - (WEEKS - 1) * WEEK;
    const weeks = Array.from({ length: WEEKS }, (_, i) => ({ weekStart: new Date(from + i * WEEK).toISOString().slice(0, 10), joiners: 0, movers: 0, leavers: 0 }));
    const flow = weeklyFlowQuery(from);
    const rows = await db.all<{ type: string; wk: number; n: number }>(flow.sql, flow.params);
    for (const r of rows) {
      const w = weeks[Math.floor(Number(r.wk))];
      if (w) w[FLOW[r.type]] += Number(r.n);
    }
    // An inactive account is warned first; its disablement follows the warning by the configured days.
    const due = await db.all<{ identity_id: string; action: string; due_at: number; employee_id: string | null; display_name: string | null; account_status: string | null }>(
      `SELECT d.identity_id, d.action, d.due_at, i.employee_id, i.display_name, i.account_status
       FROM deadlines d LEFT JOIN identities i ON i.identity_id = d.identity_id
       WHERE d.action IN ('warn-inactive', 'disable-inactive') ORDER BY d.due_at, d.identity_id LIMIT 50`,
    );
    const warnDays = this.engine.config.inactivityWarningDays * 86400_000;
    const lag = await this.engine.projections.lag();
    return {
      generatedAt: new Date(now).toISOString(),
      countsByStatus: counts,
      total: Object.values(counts).reduce((a, b) => a + b, 0),
      weekly: weeks,
      dueForInactivityDisablement: due.map((r) => ({
        identityId: r.identity_id,
        employeeId: r.employee_id ?? null,
        displayName: r.display_name ?? null,
        status: r.account_status ?? null,
        nextAction: r.action,
        nextActionAt: new Date(Number(r.due_at)).toISOString(),
        disableAt: new Date(Number(r.due_at) + (r.action === 'warn-inactive' ? warnDays : 0)).toISOString(),
      })),
      projections: { lagEvents: lag, maxLagEvents: this.engine.config.readyMaxLagEvents, checkpoints: this.engine.projections.status() },
    };
  }

  @Get('identities/:id/deadlines')
  @ApiOperation({ summary: "One identity's scheduled deprovisioning actions, earliest first" })
  @ApiJson(ref('Deadlines'))
  @ApiProblems(400)
  async deadlines(@Param('id') id: string) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw problem(400, 'validation_failed', 'Invalid identity id', 'identity ids are UUIDs');
    const rows = await this.engine.readDb.all<{ action: string; due_at: number }>(
      'SELECT action, due_at FROM deadlines WHERE identity_id = ? ORDER BY due_at, action',
      [id],
    );
    return { identityId: id, items: rows.map((r) => ({ action: r.action, dueAt: new Date(Number(r.due_at)).toISOString() })) };
  }
}
