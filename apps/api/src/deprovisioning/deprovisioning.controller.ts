import { RequireScope } from '../auth/scopes';
import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Engine } from '@idlc/engine';
import { ApiJson, ApiProblems, ref } from '../common/openapi';
import { problem } from '../common/problem';

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

const bad = (detail: string) => problem(400, 'validation_failed', 'Invalid query parameter', detail);

function parseBefore(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(v) || Number.isNaN(d.getTime())) {
    throw bad('before must be an ISO 8601 date or instant (e.g. 2026-03-01 or 2026-03-01T00:00:00Z)');
  }
  return d.getTime();
}

function parseLimit(v: string | undefined): number {
  if (v === undefined) return DEFAULT_LIMIT;
  const n = /^\d{1,7}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw bad(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

/** What the deprovisioning sagas will do next, read from the deadlines table. */
@ApiTags('deprovisioning')
@RequireScope('audit:read')
@Controller('deprovisioning')
export class DeprovisioningController {
  constructor(private readonly engine: Engine) {}

  @Get('upcoming')
  @ApiOperation({ summary: 'Scheduled actions (activate, terminate, delete, warn-inactive, disable-inactive), earliest first' })
  @ApiQuery({ name: 'before', required: false, description: 'only actions due strictly before this instant (ISO 8601)', schema: { type: 'string', format: 'date-time' } })
  @ApiQuery({ name: 'limit', required: false, description: `1-${MAX_LIMIT}, default ${DEFAULT_LIMIT}`, schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT } })
  @ApiJson(ref('Upcoming'))
  @ApiProblems(400, 503)
  async upcoming(@Query() q: Record<string, unknown>) {
    const unknown = Object.keys(q).filter((k) => k !== 'before' && k !== 'limit');
    if (unknown.length) throw bad(`unknown: ${unknown.join(', ')}`);
    for (const [k, v] of Object.entries(q)) if (typeof v !== 'string') throw bad(`${k} must be given once`);
    const before = parseBefore(q.before as string | undefined);
    const limit = parseLimit(q.limit as string | undefined);
    // One more than asked, to say whether the list was cut.
    const rows = await this.engine.readDb.all<{ identity_id: string; action: string; due_at: number; claimed_until: number | null; employee_id: string | null }>(
      `SELECT d.identity_id, d.action, d.due_at, d.claimed_until, i.employee_id
       FROM deadlines d LEFT JOIN identities i ON i.identity_id = d.identity_id
       ${before === undefined ? '' : 'WHERE d.due_at < ?'}
       ORDER BY d.due_at, d.identity_id LIMIT ?`,
      before === undefined ? [limit + 1] : [before, limit + 1],
    );
    const now = this.engine.clock.now().getTime();
    return {
      items: rows.slice(0, limit).map((r) => ({
        identityId: r.identity_id,
        employeeId: r.employee_id ?? null,
        action: r.action,
        dueAt: new Date(Number(r.due_at)).toISOString(),
        // A worker holds it right now (firing, or retrying after a failure).
        inProgress: r.claimed_until !== null && Number(r.claimed_until) >= now,
      })),
      before: before === undefined ? null : new Date(before).toISOString(),
      limit,
      truncated: rows.length > limit,
    };
  }
}
