import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Engine } from '@idlc/engine';
import { AppModule } from './app.module';
import { withSchemas } from './common/openapi';
import { ProblemFilter } from './common/problem';
import { ScimAwareGlobalFilter } from './scim/scim-error.filter';
import { createLogger, fastifyOptions, installObservability } from './observability';
import type { DestinationStream } from 'pino';

export interface AppOptions {
  logger?: boolean;
  /** Where the JSON request logs go (default stdout), at LOG_LEVEL. */
  logDestination?: DestinationStream;
}

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
  const fastify = app.getHttpAdapter().getInstance();
  // Correlation ids, JSON logs, /metrics, per-route body limits, JSON depth limit, strict content types.
  installObservability(app, engine);
  // Graceful stop: answers sent once close() began (the requests it drains) carry `Connection: close`,
  // else a keep-alive client holds the drain open until Fastify's 72 s keep-alive timeout.
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
  });
  fastify.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  const doc = withSchemas(
    SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('idlc')
      .setDescription('Event-sourced identity lifecycle engine: HR feed, SSO login hook, SCIM 2.0, audit replay')
      .setVersion('0.1.0')
      .build(),
    ),
  );
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs/openapi.json' });
  await app.init();
  await fastify.ready();
  return app;
}
