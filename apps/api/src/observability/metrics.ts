import { Engine, registerEngineMetrics } from '@idlc/engine';
import { Counter, Histogram, Registry } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  close(): void;
}

/** One registry per app (tests run many apps in one process), named idlc_*: HTTP plus the engine's metrics. */
export function createMetrics(engine: Engine): ApiMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: 'idlc_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'idlc_http_request_duration_seconds',
    help: 'HTTP request duration, by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const stopEngineMetrics = registerEngineMetrics(registry, engine);
  // Label children per (method, route, status): prom-client hashes a label object on every call otherwise.
  // Routes are patterns (or 'unmatched'), so the map stays as small as the route table.
  const children = new Map<string, { count: Counter.Internal; time: Histogram.Internal<string> }>();
  return {
    registry,
    observeRequest(method, route, status, seconds) {
      const key = `${method} ${status} ${route}`;
      let child = children.get(key);
      if (!child) {
        child = { count: requests.labels(method, route, String(status)), time: duration.labels(method, route) };
        children.set(key, child);
      }
      child.count.inc();
      child.time.observe(seconds);
    },
    close: stopEngineMetrics,
  };
}
