import 'reflect-metadata';
import { ConfigError, Engine, loadConfig, registerEngineMetrics, stopOnSignals } from '@idlc/engine';
import { PolicyError } from '@idlc/domain';
import { createServer } from 'node:http';
import { Registry } from 'prom-client';

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
  // A tiny liveness/readiness endpoint for orchestrators (docker-compose healthcheck), and /metrics:
  // the worker runs the projections, sagas and Kafka consumer, so their metrics are scraped here.
  const port = Number(process.env.WORKER_HEALTH_PORT ?? 3001);
  const metrics = new Registry();
  registerEngineMetrics(metrics, engine);
  const health = createServer((req, res) => {
    void (async () => {
      if (req.url?.split('?')[0] === '/metrics') {
        try {
          const text = await metrics.metrics();
          res.writeHead(200, { 'content-type': metrics.contentType }).end(text);
        } catch (e) {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`);
        }
        return;
      }
      try {
        await engine.store.ping();
        const lag = await engine.projections.lag();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', projectionLag: lag }));
      } catch (e) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'down', error: (e as Error).message }));
      }
    })();
  });
  const host = process.env.HOST ?? '127.0.0.1';
  await new Promise<void>((r) => health.listen(port, host, r));
  const bound = (health.address() as { port: number }).port;
  console.log(`idlc worker running (event store: ${engine.config.eventStore}; health and /metrics on http://${host}:${bound})`);
  stopOnSignals('worker (flushing checkpoints)', () => health.close(), () => engine.close());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
