import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadRun } from './lib';

/**
 * autocannon over a pre-built list of bodies or paths, each sent exactly once (`amount` = list
 * length): a spent ID token would be refused as a replay. Connections share one cursor. The
 * generator runs in a child process (load-child.ts), so on a 2-core machine the server under test
 * and the load it answers each have a core, for the engine and its bare-Fastify baseline alike.
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
  /** Send this many requests per second on a fixed schedule (latency at a load) instead of as fast as answered. */
  rate?: number;
}): Promise<LoadRun> {
  const list = opts.bodies ?? opts.paths ?? [];
  const dir = mkdtempSync(join(tmpdir(), 'idlc-load-'));
  const file = join(dir, 'job.json');
  writeFileSync(
    file,
    JSON.stringify({
      url: opts.url,
      method: opts.method,
      headers: opts.headers ?? {},
      connections: opts.connections ?? 50,
      list,
      kind: opts.bodies ? 'bodies' : 'paths',
      amount: opts.amount ?? list.length,
      rate: opts.rate,
    }),
  );
  try {
    const child = spawn(process.execPath, [join(__dirname, 'load-child.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    if (code !== 0) throw new Error(`load generator exited with ${code}`);
    return JSON.parse(out.trim().split('\n').pop()!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Several rounds of one load, summed: throughput over all of them, the median round's p50, the worst round's p99. */
export type AlternatedRun = LoadRun & { roundRates: number[] };

/**
 * Runs each load over its share of the work in alternating rounds, the order turning each round
 * (a b c, b c a, c a b, ...), and sums each load's rounds. This VM's speed drifts by a quarter
 * within minutes, so a baseline measured minutes before its subject compares two minutes as much as
 * two routes; interleaved, both see the same minutes.
 */
export async function alternate<K extends string>(rounds: number, loads: Record<K, (round: number) => Promise<LoadRun>>): Promise<Record<K, AlternatedRun>> {
  const names = Object.keys(loads) as K[];
  const runs = new Map<K, LoadRun[]>(names.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < names.length; j++) {
      const k = names[(r + j) % names.length];
      runs.get(k)!.push(await loads[k](r));
    }
  }
  return Object.fromEntries(names.map((k) => [k, combineRounds(runs.get(k)!)])) as Record<K, AlternatedRun>;
}

export function combineRounds(runs: LoadRun[]): AlternatedRun {
  const sum = (f: (r: LoadRun) => number) => runs.reduce((a, r) => a + f(r), 0);
  const requests = sum((r) => r.requests);
  const seconds = sum((r) => r.seconds);
  const p50s = runs.map((r) => r.p50).sort((a, b) => a - b);
  return {
    requestsPerSecond: Math.round(requests / (seconds || 1)),
    p50: p50s[Math.floor((p50s.length - 1) / 2)],
    p99: Math.max(...runs.map((r) => r.p99)),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
    requests,
    seconds: Math.round(seconds * 1000) / 1000,
    roundRates: runs.map((r) => r.requestsPerSecond),
  };
}
