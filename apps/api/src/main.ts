import 'reflect-metadata';
import { ConfigError, Engine, loadConfig, stopOnSignals } from '@idlc/engine';
import { PolicyError } from '@idlc/domain';
import { createApp, requestsDrained } from './app';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
  let engine: Engine;
  try {
    engine = await Engine.open({ config });
  } catch (e) {
    if (e instanceof PolicyError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  let app;
  try {
    app = await createApp(engine);
  } catch (e) {
    // Module-level configuration (the SSO IdP file) is validated while the app is built.
    if (e instanceof ConfigError) {
      console.error(e.message);
      await engine.close();
      process.exit(78);
    }
    throw e;
  }
  engine.start();
  await app.listen({ port: config.port, host: config.host });
  const url = await app.getUrl();
  console.log(`idlc listening on ${url.replace('[::1]', 'localhost')} (event store: ${config.eventStore}${config.eventStore === 'sqlite' ? ` at ${config.sqliteFile}` : ''}; docs at /docs)`);

  // Nest/Fastify close stops accepting and waits for in-flight requests; then checkpoints and the store.
  stopOnSignals('(finishing in-flight requests, flushing checkpoints)', () => app.close(), () => requestsDrained(app), () => engine.close());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
