import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Engine } from '@idlc/engine';
import { AppModule } from './app.module';
import { ProblemFilter } from './common/problem';
import { ScimAwareGlobalFilter } from './scim/scim-error.filter';

export interface AppOptions {
  logger?: boolean;
}

/** Builds the HTTP application around an opened engine (used by main, tests and benchmarks). */
export async function createApp(engine: Engine, options: AppOptions = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: 4 * 1024 * 1024 });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forEngine(engine), adapter, {
    rawBody: true,
    logger: options.logger === false ? false : ['error', 'warn'],
    abortOnError: false,
  });
  app.useGlobalFilters(new ScimAwareGlobalFilter(new ProblemFilter((e) => console.error(e))));
  const fastify = app.getHttpAdapter().getInstance();
  // SCIM clients send application/scim+json (RFC 7644 3.1): parsed like JSON, with the same prototype-poisoning guards.
  fastify.addContentTypeParser('application/scim+json', { parseAs: 'string' }, fastify.getDefaultJsonParser('error', 'error'));
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('idlc')
      .setDescription('Event-sourced identity lifecycle engine: HR feed, SSO login hook, SCIM 2.0, audit replay')
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs/openapi.json' });
  await app.init();
  await fastify.ready();
  return app;
}
