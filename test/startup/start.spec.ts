import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDirPerTest } from '../support/temp-dir';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/apps/api/src/main.js');

/** Runs the built server the way `npm start` does and collects its output until `until` matches or it exits. */
function run(env: Record<string, string>, until: RegExp, timeoutMs = 15000) {
  const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const done = new Promise<{ out: string; code: number | null; matched: boolean }>((resolveP) => {
    const timer = setTimeout(() => resolveP({ out, code: null, matched: false }), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) {
        clearTimeout(timer);
        resolveP({ out, code: null, matched: true });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolveP({ out, code, matched: until.test(out) });
    });
  });
  return { child, done };
}

describe('starting the engine as `npm start` does (built server, embedded SQLite, no services)', () => {
  const tempDir = tempDirPerTest('idlc-start-');

  it('serves /health within seconds and stops cleanly on SIGTERM', async () => {
    const started = Date.now();
    const { child, done } = run({ PORT: '0', DATA_DIR: tempDir(), EVENT_STORE: '', DATABASE_URL: '', KAFKA_BROKERS: '' }, /listening on (http:\/\/\S+)/);
    const r = await done;
    expect(r.matched).toBe(true);
    const url = /listening on (http:\/\/\S+)/.exec(r.out)![1];
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(10000);
    const exited = new Promise<number | null>((r2) => child.on('exit', (code) => r2(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('refuses a bad configuration value with a message naming the variable', async () => {
    const { done } = run({ PORT: '0', DATA_DIR: tempDir(), EVENT_STORE: 'mongodb' }, /$^/);
    const r = await done;
    expect(r.code).toBe(78);
    expect(r.out).toContain('EVENT_STORE="mongodb": must be one of sqlite, postgres, eventstoredb');
  });

  it('refuses an invalid birthright policy with an error naming the rule', async () => {
    const policy = join(tempDir(), 'policy.yaml');
    writeFileSync(policy, 'version: 1\ndefaultRoles: [basic]\nrules:\n  - id: eng\n    when: { attribute: departmnet, equals: Engineering }\n    roles: [dev]\n');
    const { done } = run({ PORT: '0', DATA_DIR: tempDir(), BIRTHRIGHT_POLICY_FILE: policy }, /$^/);
    const r = await done;
    expect(r.code).toBe(78);
    expect(r.out).toContain("rule 'eng' (rules[0]): when: unknown attribute 'departmnet'");
  });
});
