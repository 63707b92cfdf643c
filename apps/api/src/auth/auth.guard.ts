import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Engine, Scope, ScimError } from '@idlc/engine';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hash as cryptoHash, timingSafeEqual } from 'node:crypto';
import { problem } from '../common/problem';
import { AuthenticatedRequest, Principal, PUBLIC_KEY, SCOPE_KEY } from './scopes';

const digest = (s: string) => cryptoHash('sha256', s, 'buffer');

/**
 * Index of the static token (SCIM_TOKENS, given as their digests) equal to `given`, or -1. Digests
 * make every comparison the same length, and every configured token is compared, so timing tells nothing.
 */
function matchStaticToken(given: string, tokenDigests: readonly Buffer[]): number {
  const d = digest(given);
  let found = -1;
  tokenDigests.forEach((t, i) => {
    if (timingSafeEqual(d, t) && found < 0) found = i;
  });
  return found;
}

const bearer = (header: string | undefined) => /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];

/**
 * Every route needs a credential holding the route's scope (401 without a valid one, 403 when
 * the scope is missing), except routes marked @Public. A route with no scope declared is treated
 * as `admin`, so forgetting the decorator fails closed. SCIM routes answer in the SCIM error schema
 * and also accept the IdP tokens configured in SCIM_TOKENS.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  /** SCIM_TOKENS are fixed for the process: hashed once, not on every request. */
  private readonly scimTokenDigests: Buffer[];

  constructor(
    private readonly engine: Engine,
    private readonly reflector: Reflector,
  ) {
    this.scimTokenDigests = engine.config.scimTokens.map(digest);
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const scope = this.reflector.getAllAndOverride<Scope>(SCOPE_KEY, targets) ?? 'admin';
    const req = ctx.switchToHttp().getRequest<FastifyRequest & AuthenticatedRequest>();
    const token = bearer(req.headers.authorization);
    const principal = token ? await this.authenticate(token, scope) : undefined;
    if (!principal) {
      void ctx.switchToHttp().getResponse<FastifyReply>().header('www-authenticate', `Bearer realm="idlc", scope="${scope}"`);
      const detail = `a bearer credential with scope ${scope} is required`;
      if (scope === 'scim') throw new ScimError(401, undefined, detail);
      throw problem(401, 'unauthorized', 'Unauthorized', detail, { requiredScope: scope });
    }
    if (!principal.scopes.includes(scope)) {
      const detail = `this credential lacks scope ${scope} (it has ${principal.scopes.join(', ')})`;
      if (scope === 'scim') throw new ScimError(403, undefined, detail);
      throw problem(403, 'forbidden', 'Forbidden', detail, { requiredScope: scope });
    }
    req.principal = principal;
    return true;
  }

  private async authenticate(token: string, scope: Scope): Promise<Principal | undefined> {
    if (scope === 'scim' && !token.startsWith('idlc_')) {
      // IdPs configured with a static SCIM token (SCIM_TOKENS): the token's position names the client.
      const i = matchStaticToken(token, this.scimTokenDigests);
      return i < 0 ? undefined : { actor: `scim-token-${i + 1}`, name: `SCIM_TOKENS[${i}]`, scopes: ['scim'] };
    }
    const c = await this.engine.credentials.authenticate(token);
    return c && { actor: `credential:${c.id}`, credentialId: c.id, name: c.name, scopes: c.scopes };
  }
}
