import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Engine } from '@idlc/engine';
import { AppModule } from './app.module';
import { ref, withSchemas } from './common/openapi';
import { ProblemFilter } from './common/problem';
import { ScimAwareGlobalFilter } from './scim/scim-error.filter';
import { createLogger, fastifyOptions, installObservability } from './observability';
import type { DestinationStream } from 'pino';

export interface AppOptions {
  logger?: boolean;
  /** Where the JSON request logs go (default stdout), at LOG_LEVEL. */
  logDestination?: DestinationStream;
}

const drains = new WeakMap<NestFastifyApplication, (ms: number) => Promise<void>>();

/** Resolves once no request handler is running (or after `ms`): call after app.close(), before engine.close(). */
export const requestsDrained = (app: NestFastifyApplication, ms = 30_000): Promise<void> => drains.get(app)?.(ms) ?? Promise.resolve();

/** Builds the HTTP application around an opened engine (used by main, tests and benchmarks). */
export async function createApp(engine: Engine, options: AppOptions = {}): Promise<NestFastifyApplication> {
  const logger = createLogger(engine.config.logLevel, options.logDestination);
  const adapter = new FastifyAdapter(fastifyOptions(logger));
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forEngine(engine), adapter, {
    rawBody: true,
    logger: options.logger === false ? false : ['error', 'warn'],
    abortOnError: false,
  });
  app.useGlobalFilters(new ScimAwareGlobalFilter(new ProblemFilter((err) => logger.error({ err }, 'unhandled error'))));
  // A data key missing without an erasure: that identity's values stay encrypted in projections and Kafka.
  engine.store.cipher.onError = (identityId, err) => logger.error({ identityId, err }, 'personal data cannot be decrypted');
  const fastify = app.getHttpAdapter().getInstance();
  // Correlation ids, JSON logs, /metrics, per-route body limits, JSON depth limit, strict content types.
  installObservability(app, engine);
  // Graceful stop: answers sent once close() began (the requests it drains) carry `Connection: close`,
  // else a keep-alive client holds the drain open until Fastify's 72 s keep-alive timeout.
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
  });
  fastify.addHook('onSend', (_req, reply, payload, next) => {
    if (closing) void reply.header('connection', 'close');
    next(null, payload);
  });
  // Requests whose handlers are still running. close() should wait for them, but the engine is closed
  // only once this is zero too: an append finishing after the projections' final flush would be
  // stored yet left unprojected until the next start.
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  const done = () => {
    if (--inFlight === 0) for (const w of waiters.splice(0)) w();
  };
  fastify.addHook('onRequest', (_req, _reply, next) => {
    inFlight++;
    next();
  });
  fastify.addHook('onResponse', (_req, _reply, next) => {
    done();
    next();
  });
  fastify.addHook('onRequestAbort', (_req, next) => {
    done();
    next();
  });
  drains.set(app, (ms) =>
    inFlight === 0 ? Promise.resolve() : Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise<void>((r) => setTimeout(r, ms).unref())]),
  );
  const doc = withSchemas(
    SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('idlc')
      .setDescription('Event-sourced identity lifecycle engine: HR feed, SSO login hook, SCIM 2.0, audit replay')
      .setVersion('0.1.0')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API credential idlc_<id>_<secret> holding the route\'s scope' }, 'credential')
      .addSecurityRequirements('credential')
      .build(),
    ),
  );
  // Health probes need no credential; every other operation can answer 401 (no or a bad credential)
  // and 403 (the credential lacks the route's scope) before its handler runs.
  const problemJson = { 'application/problem+json': { schema: ref('Problem') } };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item) as { security?: unknown[]; responses?: Record<string, unknown> }[]) {
      if (path === '/health' || path === '/ready') {
        op.security = [];
        continue;
      }
      op.responses ??= {};
      op.responses['401'] ??= { description: 'Missing or rejected credential', content: problemJson };
      op.responses['403'] ??= { description: "The credential lacks the route's scope", content: problemJson };
    }
  }
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs/openapi.json' });
  await app.init();
  await fastify.ready();
  return app;
}
