import { AuthenticatedRequest, RequireScope } from '../auth/scopes';
import { All, Controller, Param, Req, Res, UseFilters } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import {
  Engine,
  listParams,
  ListParams,
  RESOURCE_TYPES,
  resourceTypeResource,
  ScimCaller,
  ScimError,
  ScimResult,
  ScimService,
  ALL_SCHEMAS,
  schemaResource,
  serviceProviderConfig,
  LIST_RESPONSE,
} from '@idlc/engine';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { SCIM_CONTENT_TYPE, ScimErrorFilter } from './scim-error.filter';

type Req = FastifyRequest & AuthenticatedRequest;

const BASE_PATH = '/scim/v2';

function send(reply: FastifyReply, status: number, body: unknown, headers: Record<string, string> = {}): void {
  void reply.status(status).headers({ 'content-type': SCIM_CONTENT_TYPE, ...headers });
  void reply.send(body === undefined ? undefined : JSON.stringify(body));
}

/** RFC 7644 3.1: SCIM bodies are application/scim+json; plain application/json is accepted too (Entra, Okta). */
function requireJson(req: Req): void {
  const ct = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!/^application\/(scim\+)?json\s*(;|$)/.test(ct)) throw new ScimError(415, undefined, 'content type must be application/scim+json or application/json');
}

const notAllowed = (req: Req, allowed: string[]) => {
  const e = new ScimError(405, undefined, `${req.method} is not supported on ${req.url.split('?')[0]}; allowed: ${allowed.join(', ')}`);
  return e;
};

/**
 * SCIM 2.0 service provider (RFC 7644) for Okta, Entra ID and other provisioning clients. Every
 * route answers SCIM errors (ScimErrorFilter) and needs a bearer credential with scope `scim` (or a
 * token from SCIM_TOKENS).
 */
@ApiExcludeController()
@RequireScope('scim')
@Controller('scim/v2')
@UseFilters(ScimErrorFilter)
export class ScimController {
  private readonly scim: ScimService;

  constructor(private readonly engine: Engine) {
    this.scim = new ScimService(engine);
  }

  private base(req: Req): string {
    return `${req.protocol}://${req.headers.host ?? `${this.engine.config.host}:${this.engine.config.port}`}${BASE_PATH}`;
  }

  private caller(req: Req): ScimCaller {
    const c = req.headers['x-correlation-id'];
    return { actor: req.principal?.actor ?? 'scim', correlationId: typeof c === 'string' && c ? c.slice(0, 128) : randomUUID() };
  }

  private query(req: Req): ListParams {
    return listParams((req.query ?? {}) as Record<string, unknown>);
  }

  private ifMatch(req: Req): string | undefined {
    const h = req.headers['if-match'];
    return typeof h === 'string' ? h : undefined;
  }

  private one(reply: FastifyReply, status: number, r: ScimResult, extra: Record<string, string> = {}): void {
    send(reply, status, r.resource, { etag: r.version, ...extra });
  }

  private async resource(kind: 'User' | 'Group', id: string, req: Req, reply: FastifyReply): Promise<void> {
    const q = this.query(req);
    const base = this.base(req);
    const s = this.scim;
    switch (req.method) {
      case 'GET': {
        const r = kind === 'User' ? await s.getUser(id, base, q) : await s.getGroup(id, base, q);
        const inm = req.headers['if-none-match'];
        if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === r.version || t.trim() === '*')) {
          void reply.status(304).header('etag', r.version).send();
          return;
        }
        return this.one(reply, 200, r);
      }
      case 'PUT':
        requireJson(req);
        return this.one(reply, 200, kind === 'User' ? await s.replaceUser(id, req.body, this.ifMatch(req), base, this.caller(req), q) : await s.replaceGroup(id, req.body, this.ifMatch(req), base, this.caller(req), q));
      case 'PATCH':
        requireJson(req);
        return this.one(reply, 200, kind === 'User' ? await s.patchUser(id, req.body, this.ifMatch(req), base, this.caller(req), q) : await s.patchGroup(id, req.body, this.ifMatch(req), base, this.caller(req), q));
      case 'DELETE':
        if (kind === 'User') await s.deleteUser(id, this.ifMatch(req), this.caller(req));
        else await s.deleteGroup(id, this.ifMatch(req), this.caller(req));
        void reply.status(204).send();
        return;
      default:
        throw notAllowed(req, ['GET', 'PUT', 'PATCH', 'DELETE']);
    }
  }

  private async collection(kind: 'User' | 'Group', req: Req, reply: FastifyReply): Promise<void> {
    const base = this.base(req);
    if (req.method === 'GET') {
      const q = this.query(req);
      return send(reply, 200, kind === 'User' ? await this.scim.listUsers(q, base) : await this.scim.listGroups(q, base));
    }
    if (req.method === 'POST') {
      requireJson(req);
      const q = this.query(req);
      const r = kind === 'User' ? await this.scim.createUser(req.body, base, this.caller(req), q) : await this.scim.createGroup(req.body, base, this.caller(req), q);
      return this.one(reply, 201, r, { location: r.location });
    }
    throw notAllowed(req, ['GET', 'POST']);
  }

  private async search(kind: 'User' | 'Group' | 'all', req: Req, reply: FastifyReply): Promise<void> {
    if (req.method !== 'POST') throw notAllowed(req, ['POST']);
    requireJson(req);
    const p = ScimService.searchParams(req.body);
    const base = this.base(req);
    const r = kind === 'User' ? await this.scim.listUsers(p, base) : kind === 'Group' ? await this.scim.listGroups(p, base) : await this.scim.searchAll(p, base);
    send(reply, 200, r);
  }

  @All('Users')
  users(@Req() req: Req, @Res() reply: FastifyReply) {
    return this.collection('User', req, reply);
  }

  @All('Users/.search')
  searchUsers(@Req() req: Req, @Res() reply: FastifyReply) {
    return this.search('User', req, reply);
  }

  @All('Users/:id')
  user(@Param('id') id: string, @Req() req: Req, @Res() reply: FastifyReply) {
    return this.resource('User', id, req, reply);
  }

  @All('Groups')
  groups(@Req() req: Req, @Res() reply: FastifyReply) {
    return this.collection('Group', req, reply);
  }

  @All('Groups/.search')
  searchGroups(@Req() req: Req, @Res() reply: FastifyReply) {
    return this.search('Group', req, reply);
  }

  @All('Groups/:id')
  group(@Param('id') id: string, @Req() req: Req, @Res() reply: FastifyReply) {
    return this.resource('Group', id, req, reply);
  }

  @All('.search')
  searchAll(@Req() req: Req, @Res() reply: FastifyReply) {
    return this.search('all', req, reply);
  }

  // Discovery (RFC 7644 section 4): read-only, 405 on any write.

  private readOnly(req: Req): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw notAllowed(req, ['GET']);
  }

  @All('ServiceProviderConfig')
  spc(@Req() req: Req, @Res() reply: FastifyReply) {
    this.readOnly(req);
    send(reply, 200, serviceProviderConfig(this.base(req)));
  }

  @All('ResourceTypes')
  resourceTypes(@Req() req: Req, @Res() reply: FastifyReply) {
    this.readOnly(req);
    const list = RESOURCE_TYPES.map((rt) => resourceTypeResource(rt, this.base(req)));
    send(reply, 200, { schemas: [LIST_RESPONSE], totalResults: list.length, startIndex: 1, itemsPerPage: list.length, Resources: list });
  }

  @All('ResourceTypes/:id')
  resourceType(@Param('id') id: string, @Req() req: Req, @Res() reply: FastifyReply) {
    this.readOnly(req);
    const rt = RESOURCE_TYPES.find((r) => r.id === id);
    if (!rt) throw new ScimError(404, undefined, `no resource type ${id}`);
    send(reply, 200, resourceTypeResource(rt, this.base(req)));
  }

  @All('Schemas')
  schemas(@Req() req: Req, @Res() reply: FastifyReply) {
    this.readOnly(req);
    const list = ALL_SCHEMAS.map((s) => schemaResource(s, this.base(req)));
    send(reply, 200, { schemas: [LIST_RESPONSE], totalResults: list.length, startIndex: 1, itemsPerPage: list.length, Resources: list });
  }

  @All('Schemas/:id')
  schema(@Param('id') id: string, @Req() req: Req, @Res() reply: FastifyReply) {
    this.readOnly(req);
    const s = ALL_SCHEMAS.find((x) => x.id.toLowerCase() === id.toLowerCase());
    if (!s) throw new ScimError(404, undefined, `no schema ${id}`);
    send(reply, 200, schemaResource(s, this.base(req)));
  }

  /** Anything else under /scim/v2: a SCIM 404, not the API's problem+json. */
  @All('*')
  unknown(@Req() req: Req) {
    throw new ScimError(404, undefined, `no SCIM endpoint ${req.url.split('?')[0]}`);
  }
}
