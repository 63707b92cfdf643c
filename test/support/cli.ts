import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist/apps/cli/src/main.js');

/**
 * Runs the built idlc CLI as an operator would (npm run build first). Services the caller does not
 * name are switched off, so the CLI works on the SQLite file under DATA_DIR unless `env` says otherwise.
 */
export function runCli(args: string[], env: Record<string, string> = {}, opts: { input?: string; timeoutMs?: number } = {}) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, KAFKA_BROKERS: '', EVENT_STORE: '', DATABASE_URL: '', DATABASE_SCHEMA: '', ...env },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Creates an API credential the way an operator bootstraps a deployment (`idlc credentials:create`
 * against the same DATA_DIR / database the server uses) and returns its token.
 */
export function createCredentialWithCli(env: Record<string, string>, scopes: string[], name = 'test-client'): string {
  const r = runCli(['credentials:create', '--name', name, '--scopes', scopes.join(','), '--json'], env);
  if (r.code !== 0) throw new Error(`credentials:create exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout).token;
}
