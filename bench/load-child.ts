import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

/**
 * The load generator, run as its own process by http-load.ts so it does not share the server's
 * event loop (as a real IdP or HR system would not). Reads its job from the JSON file named in
 * argv[2], prints one JSON result line.
 */
interface Job {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  connections: number;
  list: string[];
  kind: 'bodies' | 'paths';
  amount: number;
}

const job: Job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let i = 0;
const origin = new URL(job.url);
const t0 = Date.now();
let last = t0;
const inst = autocannon(
  {
    url: origin.origin,
    connections: job.connections,
    amount: job.amount,
    requests: [
      {
        method: job.method,
        path: origin.pathname,
        headers: { ...job.headers, ...(job.kind === 'bodies' ? { 'content-type': 'application/json' } : {}) },
        setupRequest: (req: any) => {
          const item = job.list[i++ % job.list.length];
          return job.kind === 'bodies' ? { ...req, body: item } : { ...req, path: item };
        },
      },
    ],
  },
  (err, r) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    // autocannon notices that `amount` is reached only at its next 1 s sample tick: time to the last response instead.
    const seconds = (last - t0) / 1000;
    process.stdout.write(
      JSON.stringify({
        requestsPerSecond: Math.round(r.requests.total / (seconds || 1)),
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
        requests: r.requests.total,
        seconds,
      }) + '\n',
    );
  },
);
inst.on('response', () => (last = Date.now()));
