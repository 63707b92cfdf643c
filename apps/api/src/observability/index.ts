import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Engine } from '@idlc/engine';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ERROR_SCHEMA } from '@idlc/engine';
import { problemType } from '../common/problem';
import { SCIM_CONTENT_TYPE } from '../scim/scim-error.filter';
import { CORRELATION_HEADER, correlationIdOf } from './logging';
import { MAX_BODY_BYTES, installInputLimits } from './limits';
import { createMetrics } from './metrics';

export * from './limits';
export * from './logging';
export * from './metrics';

/** The fastify module the Nest adapter runs on: its LogController is checked with instanceof. */
function nestFastify(): { LogController: new (o: object) => any } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(require.resolve('fastify', { paths: [dirname(require.resolve('@nestjs/platform-fastify'))] }));
}

/**
 * Errors the router raises before any route or Nest filter runs (a path parameter over 100
 * characters, a malformed URL): answered in the same formats as everything else, without echoing the URL.
 */
function frameworkErrors(error: { statusCode?: number; code?: string }, req: { url: string }, reply: { code(n: number): any }): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const detail = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : 'malformed URL';
  if (req.url.startsWith('/scim/')) {
    reply.code(status).header('content-type', SCIM_CONTENT_TYPE).send(JSON.stringify({ schemas: [ERROR_SCHEMA], status: String(status), detail }));
    return;
  }
  const title = status === 414 ? 'URI too long' : 'Bad request';
  const body = { type: problemType(status === 414 ? 'uri_too_long' : 'bad_request'), title, status, detail, instance: req.url.split('?')[0].slice(0, 200) };
  reply.code(status).header('content-type', 'application/problem+json; charset=utf-8').send(JSON.stringify(body));
}

/** Fastify options: the pino logger, correlation ids as request ids, the server-wide body limit. */
export function fastifyOptions(logger: Logger): {
  bodyLimit: number;
  loggerInstance: Logger;
  genReqId: (req: IncomingMessage) => string;
  requestIdHeader: false;
  logController: any;
  frameworkErrors: (error: any, req: any, reply: any) => void;
} {
  return {
    bodyLimit: MAX_BODY_BYTES,
    loggerInstance: logger,
    genReqId: correlationIdOf,
    requestIdHeader: false,
    // One line per request, written by the onResponse hook below with the route pattern.
    logController: new (nestFastify().LogController)({ disableRequestLogging: true, requestIdLogLabel: 'correlationId' }),
    frameworkErrors,
  };
}

/**
 * Correlation ids (echoed as a response header and handed on to handlers), one log line and one
 * metric sample per request, `/metrics`, and the input limits. Call before app.init().
 */
export function installObservability(app: NestFastifyApplication, engine: Engine): void {
  const fastify = app.getHttpAdapter().getInstance();
  const metrics = createMetrics(engine);
  // Callback-style hooks: they run on every request, and an async hook costs a promise and a tick.
  fastify.addHook('onRequest', (req, reply, done) => {
    // Handlers that read the header (the SSO login hook) see the same id the logs carry.
    req.headers[CORRELATION_HEADER] = req.id;
    void reply.header(CORRELATION_HEADER, req.id);
    done();
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.is404 || !req.routeOptions.url ? 'unmatched' : req.routeOptions.url;
    const status = reply.statusCode;
    metrics.observeRequest(req.method, route, status, reply.elapsedTime / 1000);
    if (status >= 500 || (req.log as Logger).isLevelEnabled('info')) {
      const credentialId = (req as { principal?: { credentialId?: string } }).principal?.credentialId;
      const line = { method: req.method, route, path: req.url.split('?')[0], status, durationMs: Math.round(reply.elapsedTime * 10) / 10, ...(credentialId ? { credentialId } : {}) };
      if (status >= 500) req.log.error(line, 'request failed');
      else req.log.info(line, 'request completed');
    }
    done();
  });
  fastify.addHook('onClose', async () => metrics.close());
  fastify.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  installInputLimits(app);
}
