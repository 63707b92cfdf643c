import 'reflect-metadata';
import { ConfigError, Engine, loadConfig, stopOnSignals } from '@idlc/engine';
import { PolicyError } from '@idlc/domain';
import { createServer } from 'node:http';

/**
 * The worker: projections, deprovisioning sagas and messaging, without the HTTP API. In the embedded
 * default the API process runs all of this itself (WORKER_MODE=all); split deployments run the API
 * with WORKER_MODE=api and one or more of these with WORKER_MODE=worker.
 */
async function main(): Promise<void> {
  let engine: Engine;
  try {
    const config = loadConfig({ ...process.env, WORKER_MODE: process.env.WORKER_MODE || 'worker' });
    if (config.workerMode === 'api') throw new ConfigError(['WORKER_MODE=api makes no sense for the worker: use worker or all']);
    engine = await Engine.open({ config });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof PolicyError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  engine.start();
  // A tiny liveness/readiness endpoint for orchestrators (docker-compose healthcheck).
  const port = Number(process.env.WORKER_HEALTH_PORT ?? 3001);
  const health = createServer((req, res) => {
    void (async () => {
      try {
        await engine.store.ping();
        const lag = await engine.projections.lag();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', projectionLag: lag }));
      } catch (e) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'down', error: (e as Error).message }));
      }
    })();
  });
  health.listen(port, process.env.HOST ?? '127.0.0.1');
  console.log(`idlc worker running (event store: ${engine.config.eventStore}; health on :${port})`);
  stopOnSignals('worker (flushing checkpoints)', () => health.close(), () => engine.close());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
