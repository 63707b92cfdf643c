import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist/apps/cli/src/main.js');

/**
 * Creates an API credential the way an operator bootstraps a deployment (`idlc credentials:create`
 * against the same DATA_DIR / database the server uses) and returns its token.
 */
export function createCredentialWithCli(env: Record<string, string>, scopes: string[], name = 'test-client'): string {
  const r = spawnSync(process.execPath, [CLI, 'credentials:create', '--name', name, '--scopes', scopes.join(','), '--json'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`credentials:create exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout).token;
}
