import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { LoadRun } from './lib';

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
  /** Requests per second, sent on a fixed schedule (open loop); absent: as fast as answered. */
  rate?: number;
}

const job: Job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const origin = new URL(job.url);
const headers = { ...job.headers, ...(job.kind === 'bodies' ? { 'content-type': 'application/json' } : {}) };
const print = (r: LoadRun) => process.stdout.write(JSON.stringify(r) + '\n');
if (job.rate) paced(job.rate);
else closedLoop();

/** Each connection sends its next request when the last is answered: throughput at saturation. */
function closedLoop(): void {
  let i = 0;
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
          headers,
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
      print({ requestsPerSecond: Math.round(r.requests.total / (seconds || 1)), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx, requests: r.requests.total, seconds });
    },
  );
  inst.on('response', () => (last = Date.now()));
}

/**
 * Open loop: request k is due at start + k / rate whether or not earlier ones were answered, and
 * its latency counts from that due time, so a stalled server is charged for the requests it
 * delayed (no coordinated omission). autocannon's own rate limit spends each connection's budget
 * at the start of every second, which measures bursts at saturation instead of latency at a load.
 * undici's pool, because node:http's client costs about 150 µs of CPU a request, on the core the
 * server under test shares with it.
 */
function paced(rate: number): void {
  const pool = new Pool(origin.origin, { connections: job.connections, pipelining: 1 });
  const latencies = new Float64Array(job.amount);
  const interval = 1000 / rate;
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let non2xx = 0;
  const t0 = performance.now();
  const finish = () => {
    const seconds = (performance.now() - t0) / 1000;
    // Requests due in the first second warm up connections and both sides' JIT: sent, not timed.
    const sorted = latencies.slice(Math.min(Math.floor(rate), job.amount - 1)).sort();
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] * 100) / 100;
    void pool.close();
    print({ requestsPerSecond: Math.round(job.amount / seconds), p50: at(0.5), p99: at(0.99), errors, non2xx, requests: job.amount, seconds });
  };
  const send = (k: number) => {
    const due = t0 + k * interval;
    const item = job.list[k % job.list.length];
    const path = job.kind === 'paths' ? item : origin.pathname;
    pool
      .request({ method: job.method, path, headers, body: job.kind === 'bodies' ? item : undefined })
      .then(async (res) => {
        if (res.statusCode < 200 || res.statusCode >= 300) non2xx++;
        await res.body.dump();
      })
      .catch(() => errors++)
      .finally(() => {
        latencies[k] = performance.now() - due;
        if (++answered === job.amount) finish();
      });
  };
  const pump = () => {
    const now = performance.now();
    while (sent < job.amount && t0 + sent * interval <= now) send(sent++);
    // A 1 ms timer, not a busy loop: the generator must leave the server its core. Latencies count
    // from the due time, so this timer's lateness is charged to the server (conservative).
    if (sent < job.amount) setTimeout(pump, 1);
  };
  pump();
}
