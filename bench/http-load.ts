import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './lib';

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
}): Promise<LoadResult & { requests: number; seconds: number }> {
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
