import autocannon from 'autocannon';
import Fastify, { type FastifyInstance } from 'fastify';
import { jwtVerify, type KeyLike } from 'jose';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchResult {
  name: string;
  metric: string;
  unit: string;
  value: number;
  baseline: { name: string; value: number };
  /** value / baseline (for latencies: baseline / value, so higher is always better). */
  ratio: number;
  target?: string;
  met?: boolean;
  extra?: Record<string, unknown>;
}

export interface BenchContext {
  quick: boolean;
  log(msg: string): void;
}

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `idlc-bench-${prefix}-`));

export function timeIt<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = process.hrtime.bigint();
  return fn().then((result) => ({ ms: Number(process.hrtime.bigint() - t0) / 1e6, result }));
}

export function ratio(value: number, baseline: number): number {
  return baseline > 0 ? Math.round((value / baseline) * 1000) / 1000 : 0;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** One load generator run (bench/load-child.ts): its result with how many requests it sent and for how long. */
export type LoadRun = LoadResult & { requests: number; seconds: number };

/** Drives a URL with autocannon; requests may be generated per call (fresh tokens, new users). */
export async function load(opts: {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  connections?: number;
  duration: number;
  requests?: autocannon.Request[];
}): Promise<LoadResult> {
  const r = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: opts.headers,
    connections: opts.connections ?? 50,
    duration: opts.duration,
    requests: opts.requests,
  });
  return {
    requestsPerSecond: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

/** The baseline for HTTP benchmarks: a bare Fastify route answering a body of the same size. */
export async function bareFastify(responseBody: string, method: 'GET' | 'POST' = 'POST'): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.route({ method, url: '/bare', handler: async (_req, reply) => reply.header('content-type', 'application/json').send(responseBody) });
  return listen(app, '/bare');
}

/** Starts a baseline app on a free loopback port; its URL for `path`. */
async function listen(app: FastifyInstance, path: string): Promise<{ url: string; close(): Promise<void> }> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}${path}`, close: () => app.close() };
}

/**
 * A bare Fastify POST route that only verifies the posted ID token with jose (signature, issuer,
 * audience, expiry) and answers `responseBody`: the most any login hook that checks the token with
 * this library can do on this machine, before it records or decides anything.
 */
export async function verifyOnlyFastify(responseBody: string, key: KeyLike, issuer: string, audience: string, algorithm: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.post('/verify', async (req, reply) => {
    await jwtVerify((req.body as { idToken: string }).idToken, key, { issuer, audience, algorithms: [algorithm] });
    return reply.header('content-type', 'application/json').send(responseBody);
  });
  return listen(app, '/verify');
}

export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** The 1-minute load average, to two decimals. */
export const loadAverage1m = (): number => Math.round(loadavg()[0] * 100) / 100;

/**
 * How fast this machine is at the moment of a run: fixed CPU-bound work (JSON round trips, SHA-256
 * of 64 MiB), timed before the benchmarks. A virtual machine's speed changes from day to day (2.5x
 * seen here), and every baseline moves with it; this says by how much when two reports are compared.
 */
export function machineCalibration(): { jsonRoundTripsMs: number; sha256Of64MiBMs: number; loadAverage1m: number } {
  const doc = { identityId: '0190abcd-0000-7000-8000-000000000000', revision: 9, attributes: { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering' }, roles: ['employee-basic', 'engineering-tools'] };
  const load = loadAverage1m();
  let t = performance.now();
  let n = 0;
  for (let i = 0; i < 200_000; i++) n += (JSON.parse(JSON.stringify(doc)) as typeof doc).revision;
  const jsonRoundTripsMs = performance.now() - t;
  const data = Buffer.alloc(64 * 1024 * 1024, n & 0xff);
  t = performance.now();
  createHash('sha256').update(data).digest();
  const sha256Of64MiBMs = performance.now() - t;
  return { jsonRoundTripsMs: Math.round(jsonRoundTripsMs), sha256Of64MiBMs: Math.round(sha256Of64MiBMs), loadAverage1m: load };
}
