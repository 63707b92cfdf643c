import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Engine, ScimError } from '@idlc/engine';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Bearer tokens from SCIM_TOKENS. Digests make every comparison the same length, and every
 * configured token is compared, so timing tells nothing about which one nearly matched.
 */
export function matchToken(header: string | undefined, tokens: string[]): number {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return -1;
  const given = digest(m[1]);
  let found = -1;
  tokens.forEach((t, i) => {
    if (timingSafeEqual(given, digest(t)) && found < 0) found = i;
  });
  return found;
}

@Injectable()
export class ScimAuthGuard implements CanActivate {
  constructor(private readonly engine: Engine) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<FastifyRequest & { scimActor?: string }>();
    const tokens = this.engine.config.scimTokens;
    const i = matchToken(req.headers.authorization, tokens);
    if (i < 0) throw new ScimError(401, undefined, tokens.length ? 'a valid bearer token is required' : 'SCIM is not configured (SCIM_TOKENS is empty)');
    // The token's position names the client in event metadata; the token itself is never recorded.
    req.scimActor = `scim-token-${i + 1}`;
    return true;
  }
}
