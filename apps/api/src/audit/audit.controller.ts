import { RequireScope } from '../auth/scopes';
import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { heldRoles, identityStream, IdentityState } from '@idlc/domain';
import { Engine, exportRecord, publicState } from '@idlc/engine';
import { ApiJson, ApiProblems, ref } from '../common/openapi';
import { problem } from '../common/problem';

const UUIDISH = /^[A-Za-z0-9-]{1,64}$/;

function parseInstant(name: string, v: string | undefined): Date | undefined {
  if (v === undefined || v === '') return undefined;
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) {
    throw problem(400, 'validation_failed', 'Invalid query parameter', `${name} must be an ISO 8601 instant`);
  }
  return d;
}

function parseLimit(v: string | undefined, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw problem(400, 'validation_failed', 'Invalid query parameter', `limit must be 1-${max}`);
  return n;
}

/** The identity as auditors and operators see it. */
export function identityView(s: IdentityState) {
  return {
    identityId: s.identityId,
    employeeId: s.employeeId ?? null,
    status: s.account,
    employment: s.employment,
    disabledReason: s.disabledReason ?? null,
    attributes: s.attributes,
    keys: s.keys,
    roles: s.roles.map((g) => ({ role: g.role, source: g.source, grantedAt: g.grantedAt })),
    heldRoles: heldRoles(s),
    provisionedAt: s.provisionedAt ?? null,
    lastLoginAt: s.lastLoginAt ?? null,
    hireEffectiveAt: s.hireEffectiveAt ?? null,
    termination: s.termination ?? null,
    pendingActivation: s.pendingActivation ?? null,
    revision: s.revision,
    erasedAt: s.erasedAt ?? null,
    createdAt: s.createdAt ?? null,
    updatedAt: s.updatedAt ?? null,
  };
}

@ApiTags('audit')
@RequireScope('audit:read')
@ApiProblems(400, 401, 503)
@Controller()
export class AuditController {
  constructor(private readonly engine: Engine) {}

  private checkId(id: string) {
    if (!UUIDISH.test(id)) throw problem(400, 'validation_failed', 'Invalid identity id', 'identity ids are UUIDs');
  }

  @Get('identities/:id')
  @ApiOperation({ summary: 'Current state of an identity (from the read model)' })
  @ApiJson(ref('Identity'))
  @ApiProblems(404)
  async get(@Param('id') id: string) {
    this.checkId(id);
    const row = await this.engine.readDb.get<{ state: string }>('SELECT state FROM identities WHERE identity_id = ?', [id]);
    if (!row) throw problem(404, 'identity_not_found', 'Identity not found', `no identity ${id}`);
    return identityView(JSON.parse(row.state));
  }

  @Get('identities')
  @ApiOperation({ summary: 'Look identities up by employee id, email, status or role, with keyset paging' })
  @ApiQuery({ name: 'employeeId', required: false })
  @ApiQuery({ name: 'email', required: false })
  @ApiQuery({ name: 'status', required: false })
  @ApiQuery({ name: 'role', required: false })
  @ApiQuery({ name: 'q', required: false, description: 'prefix of the name (any word) or email, case-insensitive' })
  @ApiQuery({ name: 'key', required: false, description: 'external key, e.g. hr:E1001 or idp:https://issuer|sub' })
  @ApiQuery({ name: 'after', required: false, description: 'identity id to continue after' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 500 } })
  @ApiJson(ref('IdentityPage'))
  async list(@Query() q: Record<string, string | undefined>) {
    const allowed = new Set(['employeeId', 'email', 'status', 'role', 'q', 'key', 'after', 'limit']);
    const unknown = Object.keys(q).filter((k) => !allowed.has(k));
    if (unknown.length) throw problem(400, 'validation_failed', 'Unknown query parameter', `unknown: ${unknown.join(', ')}`);
    for (const [k, v] of Object.entries(q)) {
      if (typeof v !== 'string' || v.length > 256) throw problem(400, 'validation_failed', 'Invalid query parameter', `${k} must be one string of at most 256 characters`);
    }
    const limit = parseLimit(q.limit, 50, 500);
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.employeeId) where.push('i.employee_id = ?') && params.push(q.employeeId);
    if (q.email) where.push('i.email_lc = ?') && params.push(q.email.toLowerCase());
    if (q.status) {
      if (!['pending', 'active', 'disabled', 'deleted'].includes(q.status)) {
        throw problem(400, 'validation_failed', 'Invalid query parameter', 'status must be pending, active, disabled or deleted');
      }
      where.push('i.account_status = ?') && params.push(q.status);
    }
    if (q.role) {
      where.push('EXISTS (SELECT 1 FROM role_assignments r WHERE r.identity_id = i.identity_id AND r.role = ? AND r.revoked_at IS NULL)');
      params.push(q.role);
    }
    if (q.q) {
      // LIKE wildcards in the input are taken literally; lower() keeps PostgreSQL case-insensitive too.
      const p = q.q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c);
      where.push("(lower(i.display_name) LIKE ? ESCAPE '\\' OR lower(i.display_name) LIKE ? ESCAPE '\\' OR i.email_lc LIKE ? ESCAPE '\\')");
      params.push(`${p}%`, `% ${p}%`, `${p}%`);
    }
    if (q.key) where.push('EXISTS (SELECT 1 FROM identity_keys k WHERE k.identity_id = i.identity_id AND k.key = ?)') && params.push(q.key);
    if (q.after) where.push('i.identity_id > ?') && params.push(q.after);
    const rows = await this.engine.readDb.all<{ state: string; identity_id: string }>(
      `SELECT i.identity_id, i.state FROM identities i ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY i.identity_id LIMIT ?`,
      [...params, limit + 1],
    );
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => identityView(JSON.parse(r.state))),
      next: rows.length > limit ? page[page.length - 1].identity_id : null,
    };
  }

  @Get('identities/:id/history')
  @ApiOperation({ summary: 'Every event of an identity, in order, with who caused it' })
  @ApiQuery({ name: 'fromRevision', required: false, schema: { type: 'integer', minimum: 0 } })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 10000 } })
  @ApiJson(ref('History'))
  @ApiProblems(404)
  async history(@Param('id') id: string, @Query('fromRevision') fromRevision?: string, @Query('limit') limitQ?: string) {
    this.checkId(id);
    const from = fromRevision === undefined ? 0 : Number(fromRevision);
    if (!Number.isInteger(from) || from < 0) throw problem(400, 'validation_failed', 'Invalid query parameter', 'fromRevision must be a whole number');
    const limit = parseLimit(limitQ, 1000, 10000);
    const events = await this.engine.store.readStream(identityStream(id), { fromRevision: from, maxCount: limit + 1 });
    if (events.length === 0 && from === 0) throw problem(404, 'identity_not_found', 'Identity not found', `no identity ${id}`);
    const page = events.slice(0, limit);
    return {
      identityId: id,
      // The same record auditors get from the export, hashes included.
      events: page.map(exportRecord),
      nextRevision: events.length > limit ? page[page.length - 1].revision + 1 : null,
    };
  }

  @Get('identities/:id/state')
  @ApiOperation({ summary: 'State and roles as they were at an instant, replayed from the stream up to it' })
  @ApiQuery({ name: 'at', required: true, description: 'ISO 8601 instant', schema: { type: 'string', format: 'date-time' } })
  @ApiJson(ref('StateAt'))
  @ApiProblems(404)
  async stateAt(@Param('id') id: string, @Query('at') at?: string) {
    this.checkId(id);
    const when = parseInstant('at', at);
    if (!when) throw problem(400, 'validation_failed', 'Missing query parameter', 'at is required (ISO 8601)');
    const state = await this.engine.repository.stateAt(id, when);
    if (state.revision < 0) {
      const exists = (await this.engine.store.streamRevision(identityStream(id))) >= 0;
      if (!exists) throw problem(404, 'identity_not_found', 'Identity not found', `no identity ${id}`);
      return { at: when.toISOString(), existed: false, identity: null };
    }
    return { at: when.toISOString(), existed: true, identity: identityView(publicState(state)) };
  }

  @Get('roles/:role/members')
  @ApiOperation({ summary: 'Who held a role at an instant (default: now), with the source of each grant' })
  @ApiQuery({ name: 'at', required: false, description: 'ISO 8601 instant', schema: { type: 'string', format: 'date-time' } })
  @ApiJson(ref('RoleMembers'))
  async members(@Param('role') role: string, @Query('at') at?: string) {
    if (role.length > 128) throw problem(400, 'validation_failed', 'Invalid role', 'role names are at most 128 characters');
    const when = parseInstant('at', at) ?? this.engine.clock.now();
    const rows = await this.engine.readDb.all<{ identity_id: string; source: string; granted_at: number; revoked_at: number | null }>(
      `SELECT identity_id, source, granted_at, revoked_at FROM role_assignments
       WHERE role = ? AND granted_at <= ? AND (revoked_at IS NULL OR revoked_at > ?) ORDER BY identity_id, granted_at`,
      [role, when.getTime(), when.getTime()],
    );
    return {
      role,
      at: when.toISOString(),
      members: rows.map((r) => ({
        identityId: r.identity_id,
        source: JSON.parse(r.source),
        grantedAt: new Date(Number(r.granted_at)).toISOString(),
        revokedAt: r.revoked_at ? new Date(Number(r.revoked_at)).toISOString() : null,
      })),
    };
  }
}
