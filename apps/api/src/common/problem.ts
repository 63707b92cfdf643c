import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { ConcurrencyConflictError, DataKeyUnavailableError, DuplicateKeyError, IdentityErasedError } from '@idlc/engine';
import { EventStoreUnavailableError } from '@idlc/event-store';
import { validateDto } from '@idlc/engine';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** RFC 7807 problem details. `type` is a stable URI callers can switch on. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { field: string; message: string }[];
  [extra: string]: unknown;
}

export const problemType = (slug: string) => `https://idlc.dev/problems/${slug}`;

/** Throw this anywhere in an HTTP handler to answer with a problem document. */
export class ProblemException extends HttpException {
  constructor(readonly problem: Problem) {
    super(problem, problem.status);
  }
}

export const problem = (status: number, slug: string, title: string, detail?: string, extra: Record<string, unknown> = {}) =>
  new ProblemException({ type: problemType(slug), title, status, detail, ...extra });

const TITLES: Record<number, [string, string]> = {
  400: ['bad_request', 'Bad request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not_found', 'Not found'],
  405: ['method_not_allowed', 'Method not allowed'],
  409: ['conflict', 'Conflict'],
  413: ['payload_too_large', 'Payload too large'],
  415: ['unsupported_media_type', 'Unsupported media type'],
  422: ['unprocessable', 'Unprocessable request'],
  429: ['too_many_requests', 'Too many requests'],
  503: ['unavailable', 'Service unavailable'],
};

/** Turns any error into problem+json; never leaks a stack trace. Routes with their own error format register their own filter. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly log?: (e: unknown) => void) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const req = ctx.getRequest<FastifyRequest>();
    const p = toProblem(exception);
    p.instance = req.url.split('?')[0];
    if (p.status >= 500) this.log?.(exception);
    void reply.status(p.status).header('content-type', 'application/problem+json; charset=utf-8').send(JSON.stringify(p));
  }
}

export function toProblem(e: unknown): Problem {
  if (e instanceof ProblemException) return { ...e.problem };
  if (e instanceof ConcurrencyConflictError) {
    return { type: problemType('concurrency_conflict'), title: 'Concurrent modification', status: 409, detail: e.message };
  }
  if (e instanceof DuplicateKeyError) {
    return { type: problemType('duplicate_key'), title: 'Key already in use', status: 409, detail: e.message };
  }
  if (e instanceof DataKeyUnavailableError) {
    // Only this identity's reads fail; the detail names it (never a value) so operators can restore its key.
    return { type: problemType('data_key_unavailable'), title: 'Personal data cannot be decrypted', status: 500, detail: e.message };
  }
  if (e instanceof IdentityErasedError) {
    return { type: problemType('erased'), title: 'Identity erased', status: 409, detail: e.message };
  }
  if (e instanceof EventStoreUnavailableError) {
    return { type: problemType('store_unavailable'), title: 'Event store unavailable', status: 503, detail: 'retry later' };
  }
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const [slug, title] = TITLES[status] ?? ['error', HttpStatus[status] ?? 'Error'];
    const body = e.getResponse() as any;
    const detail = typeof body === 'string' ? body : Array.isArray(body?.message) ? body.message.join('; ') : body?.message;
    return { type: problemType(slug), title, status, detail };
  }
  // Fastify's own errors (body too large, bad JSON, wrong content type) carry a statusCode.
  const fe = e as { statusCode?: number; code?: string; message?: string };
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const [slug, title] = TITLES[fe.statusCode] ?? ['bad_request', 'Bad request'];
    const detail = fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'content type must be application/json' : fe.message;
    return { type: problemType(slug), title, status: fe.statusCode, detail };
  }
  return { type: problemType('internal'), title: 'Internal error', status: 500, detail: 'the request failed; nothing partial was recorded' };
}

/** Validates a body into a DTO, or throws a 400 problem listing every bad field. */
export function validBody<T extends object>(cls: new () => T, body: unknown): T {
  const v = validateDto(cls, body);
  if (v.ok) return v.value;
  throw problem(400, 'validation_failed', 'Invalid request body', v.errors.map((e) => `${e.field}: ${e.message}`).join('; '), { errors: v.errors });
}
