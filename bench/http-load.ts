import autocannon from 'autocannon';
import type { LoadResult } from './lib';

/**
 * autocannon over a pre-built list of bodies or paths, each sent exactly once (`amount` = list
 * length): a spent ID token would be refused as a replay. Connections share one cursor.
 */
export async function loadEach(opts: {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  connections?: number;
  bodies?: string[];
  paths?: string[];
  /** Cycle the list this many times (only for idempotent requests). */
  amount?: number;
}): Promise<LoadResult & { requests: number; seconds: number }> {
  const list = opts.bodies ?? opts.paths ?? [];
  let i = 0;
  const origin = new URL(opts.url);
  const t0 = Date.now();
  let last = t0;
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const inst = autocannon(
      {
        url: origin.origin,
        connections: opts.connections ?? 50,
        amount: opts.amount ?? list.length,
        requests: [
          {
            method: opts.method,
            path: origin.pathname,
            headers: { ...(opts.headers ?? {}), ...(opts.bodies ? { 'content-type': 'application/json' } : {}) },
            setupRequest: (req: any) => {
              const item = list[i++ % list.length];
              return opts.bodies ? { ...req, body: item } : { ...req, path: item };
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    inst.on('response', () => (last = Date.now()));
  });
  // autocannon notices that `amount` is reached only at its next 1 s sample tick: time to the last response instead.
  const seconds = (last - t0) / 1000;
  return {
    requestsPerSecond: Math.round(r.requests.total / (seconds || 1)),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    requests: r.requests.total,
    seconds,
  };
}
