import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import { ConcurrencyConflictError, DuplicateKeyError, ERROR_SCHEMA, ScimError } from '@idlc/engine';
import { EventStoreUnavailableError } from '@idlc/event-store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProblemFilter } from '../common/problem';

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

/** Any error on a SCIM route, as RFC 7644 3.12 wants it: the Error schema, status as a string, scimType. */
export function scimErrorBody(e: unknown): { status: number; scimType?: string; detail: string } {
  if (e instanceof ScimError) return { status: e.status, scimType: e.scimType, detail: e.message };
  if (e instanceof DuplicateKeyError) return { status: 409, scimType: 'uniqueness', detail: 'a unique attribute is already taken' };
  if (e instanceof ConcurrencyConflictError) return { status: 409, detail: 'the resource kept changing concurrently; retry' };
  if (e instanceof EventStoreUnavailableError) return { status: 503, detail: 'the event store is unavailable; retry later' };
  if (e instanceof HttpException) {
    const body = e.getResponse() as any;
    const detail = typeof body === 'string' ? body : Array.isArray(body?.message) ? body.message.join('; ') : (body?.message ?? e.message);
    // On SCIM routes a 400 from the framework is a body that could not be parsed.
    return { status: e.getStatus(), scimType: e.getStatus() === 400 ? 'invalidSyntax' : undefined, detail };
  }
  // Fastify's own errors: malformed JSON, a body too large, an unsupported content type.
  const fe = e as { statusCode?: number; code?: string; message?: string };
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, detail: 'content type must be application/scim+json or application/json' };
    return { status: fe.statusCode, scimType: fe.statusCode === 400 ? 'invalidSyntax' : undefined, detail: fe.message ?? 'bad request' };
  }
  return { status: 500, detail: 'the request failed; nothing partial was recorded' };
}

@Catch()
export class ScimErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const b = scimErrorBody(exception);
    if (b.status >= 500) console.error(exception);
    if (b.status === 401) void reply.header('www-authenticate', 'Bearer realm="scim"');
    const body: Record<string, unknown> = { schemas: [ERROR_SCHEMA], status: String(b.status) };
    if (b.scimType) body.scimType = b.scimType;
    body.detail = b.detail;
    void reply.status(b.status).header('content-type', SCIM_CONTENT_TYPE).send(JSON.stringify(body));
  }
}

/**
 * Registered globally: errors raised before a SCIM route runs (malformed JSON, wrong content type,
 * body too large) reach only global filters, so this one answers them in SCIM form under /scim/
 * and leaves every other route to the problem+json filter.
 */
@Catch()
export class ScimAwareGlobalFilter implements ExceptionFilter {
  private readonly scim = new ScimErrorFilter();
  constructor(private readonly fallback: ProblemFilter) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<FastifyRequest>();
    if (req?.url?.startsWith('/scim/')) this.scim.catch(exception, host);
    else this.fallback.catch(exception, host);
  }
}
