import { AuthenticatedRequest, principalMetadata, RequireScope } from '../auth/scopes';
import { Body, Controller, Delete, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiBodyProblems, ApiJson, ApiProblems, ref } from '../common/openapi';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { IdentityCommand, identityStream } from '@idlc/domain';
import { CommandOutcome, Engine } from '@idlc/engine';
import { randomUUID } from 'node:crypto';
import { problem, validBody } from '../common/problem';
import { identityView } from '../audit/audit.controller';

class RoleDto {
  @IsString() @Matches(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/, { message: 'role must be a role name' }) role!: string;
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

class DisableDto {
  @IsIn(['admin', 'reconciliation']) @IsOptional() reason?: 'admin' | 'reconciliation';
  @IsOptional() @IsString() @MaxLength(500) note?: string;
}

class EnableDto {
  @IsOptional() @IsString() @MaxLength(500) note?: string;
}

class EraseDto {
  /** Why (e.g. a ticket number). Recorded as is in IdentityErased, which is never erased: no personal data here. */
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

const STATUS: Record<string, number> = {
  not_found: 404,
  account_deleted: 409,
  terminated: 409,
  not_yet_active: 409,
  account_disabled: 409,
  already_exists: 409,
  not_terminated: 409,
  erased: 409,
  account_active: 409,
  invalid: 422,
};

/** Manual actions by operators: role grants outside birthright, disable and enable, erasure. */
@ApiTags('admin')
@RequireScope('admin')
@ApiProblems(400, 404, 409, 422, 503)
@Controller('identities/:id')
export class AdminController {
  constructor(private readonly engine: Engine) {}

  private async checkIdentity(id: string) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw problem(400, 'validation_failed', 'Invalid identity id', 'identity ids are UUIDs');
    if ((await this.engine.store.streamRevision(identityStream(id))) < 0) throw problem(404, 'identity_not_found', 'Identity not found', `no identity ${id}`);
  }

  private answer(out: CommandOutcome) {
    if (out.rejection) throw problem(STATUS[out.rejection.code] ?? 409, out.rejection.code, 'Action refused', out.rejection.message);
    return { identity: identityView(out.state), appended: out.events.map((e) => e.type) };
  }

  private async run(id: string, cmd: IdentityCommand, action: string, req: AuthenticatedRequest) {
    await this.checkIdentity(id);
    const out = await this.engine.commands.execute(id, [cmd], {
      metadata: { source: 'admin', actor: 'admin', ...principalMetadata(req.principal), correlationId: randomUUID(), action },
    });
    return this.answer(out);
  }

  @Post('roles')
  @HttpCode(200)
  @ApiOperation({ summary: 'Grant a role manually (never removed by birthright recomputation)' })
  @ApiJson(ref('AdminActionResult'))
  @ApiBody({
    schema: {
      type: 'object',
      properties: { role: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$' }, reason: { type: 'string', maxLength: 500 } },
      required: ['role'],
      additionalProperties: false,
    },
  })
  @ApiBodyProblems()
  async grant(@Req() req: AuthenticatedRequest, @Param('id') id: string, @Body() body: unknown) {
    const { role } = validBody(RoleDto, body);
    return this.run(id, { kind: 'GrantRole', role, source: { kind: 'manual', by: 'admin' } }, 'grant-role', req);
  }

  @Delete('roles/:role')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke a manually granted role' })
  @ApiJson(ref('AdminActionResult'))
  async revoke(@Req() req: AuthenticatedRequest, @Param('id') id: string, @Param('role') role: string) {
    return this.run(id, { kind: 'RevokeRole', role, source: { kind: 'manual' } }, 'revoke-role', req);
  }

  @Post('disable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Disable the account now' })
  @ApiJson(ref('AdminActionResult'))
  @ApiBody({
    required: false,
    schema: {
      type: 'object',
      properties: { reason: { type: 'string', enum: ['admin', 'reconciliation'] }, note: { type: 'string', maxLength: 500 } },
      additionalProperties: false,
    },
  })
  @ApiBodyProblems()
  async disable(@Req() req: AuthenticatedRequest, @Param('id') id: string, @Body() body: unknown) {
    const { reason, note } = validBody(DisableDto, body ?? {});
    return this.run(id, { kind: 'DisableAccount', reason: reason ?? 'admin', source: 'admin', note }, 'disable', req);
  }

  @Post('enable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Enable a disabled account (not a terminated one: that takes a rehire)' })
  @ApiJson(ref('AdminActionResult'))
  @ApiBody({ required: false, schema: { type: 'object', properties: { note: { type: 'string', maxLength: 500 } }, additionalProperties: false } })
  @ApiBodyProblems()
  async enable(@Req() req: AuthenticatedRequest, @Param('id') id: string, @Body() body: unknown) {
    const { note } = validBody(EnableDto, body ?? {});
    return this.run(id, { kind: 'EnableAccount', reason: 'admin', source: 'admin', note }, 'enable', req);
  }

  @Post('erase')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Erase the personal data of a disabled or deleted identity (right to be forgotten)',
    description:
      'Appends IdentityErased (after revoking remaining roles, deleting the account and releasing its external keys) and destroys the ' +
      "identity's data key: history, roles and timestamps stay, personal values read as [erased] everywhere. 409 account_active while the " +
      'account is enabled or an activation is pending. Repeating it answers the same and appends nothing.',
  })
  @ApiBody({ required: false, schema: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } }, additionalProperties: false } })
  @ApiJson(ref('AdminActionResult'))
  @ApiBodyProblems()
  async erase(@Req() req: AuthenticatedRequest, @Param('id') id: string, @Body() body: unknown) {
    const { reason } = validBody(EraseDto, body ?? {});
    await this.checkIdentity(id);
    const out = await this.engine.erasure.erase(id, {
      reason: reason ?? 'unspecified',
      requestedBy: req.principal?.actor ?? 'admin',
      metadata: { source: 'admin', actor: 'admin', ...principalMetadata(req.principal), correlationId: randomUUID(), action: 'erase' },
    });
    return this.answer(out);
  }
}
