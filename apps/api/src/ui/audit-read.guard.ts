import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Engine } from '@idlc/engine';
import type { FastifyRequest } from 'fastify';
import { problem } from '../common/problem';
import { matchToken } from '../scim/scim-auth.guard';

/**
 * audit:read for the audit API and the /ui page's data calls: a bearer token from AUDIT_READ_TOKENS.
 * While none is configured the read API stays open as before (issue #9 brings real credentials).
 */
@Injectable()
export class AuditReadGuard implements CanActivate {
  constructor(private readonly engine: Engine) {}

  canActivate(ctx: ExecutionContext): boolean {
    const tokens = this.engine.config.auditReadTokens;
    if (!tokens.length) return true;
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    if (matchToken(req.headers.authorization, tokens) < 0) {
      throw problem(401, 'unauthorized', 'Unauthorized', 'an audit:read bearer token is required', { requiredScope: 'audit:read' });
    }
    return true;
  }
}
