import { ManualClock } from '@idlc/domain';
import Database from 'better-sqlite3';
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestApp } from '../support/app';
import { closeKeepingData, DAY, hire, history, ofType, upcoming, waitFor } from './helpers';

/**
 * The real worker process (dist/, built by `pretest`) is SIGKILLed by its failpoint right after it
 * committed a claim and before it appended anything; after a restart the action happens exactly once.
 */
const ROOT = resolve(__dirname, '../..');
const WORKER = join(ROOT, 'dist/apps/worker/src/main.js');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function startWorker(env: Record<string, string>): { child: ChildProcess; exited: Promise<Exit>; output: () => string } {
  // Only what the worker needs: no KAFKA_BROKERS or DATABASE_URL leaking in from the test environment.
  const child = spawn(process.execPath, [WORKER], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<Exit>((r) => child.on('exit', (code, signal) => r({ code, signal, output })));
  return { child, exited, output: () => output };
}

describe('deadline scheduler killed after claiming (real worker process, SIGKILL failpoint)', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run \`npm run build\` first (npm test does it in pretest)`);
    dir = mkdtempSync(join(tmpdir(), 'idlc-saga-crash-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a claim left by the killed worker is fired after restart, exactly once', async () => {
    const file = join(dir, 'idlc.db');
    const policy = { INACTIVITY_WARNING_DAYS: '0' };
    // The worker runs on the system clock: provision the contractor 31 days ago, so its 30-day
    // inactivity deadline is already due when the worker starts.
    const provisionedAt = Date.now() - 31 * DAY;
    const t = await startTestApp({ SQLITE_FILE: file, ...policy }, new ManualClock(provisionedAt));
    const id = await hire(t, 'K1', { employmentType: 'contractor' }, new Date(provisionedAt - DAY).toISOString().slice(0, 10));
    await t.settle();
    const deadline = new Date(provisionedAt + 30 * DAY).toISOString();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: deadline }]);
    await closeKeepingData(t);

    const workerEnv = {
      SQLITE_FILE: file,
      BIRTHRIGHT_POLICY_FILE: join(ROOT, 'config/birthright.yaml'),
      LOG_LEVEL: 'silent',
      WORKER_HEALTH_PORT: '0',
      ...policy,
    };
    const crashed = await startWorker({ ...workerEnv, IDLC_FAILPOINT: 'saga-after-claim' }).exited;
    expect([crashed.signal, crashed.code]).toEqual(['SIGKILL', null]);

    const db = new Database(file, { readonly: true });
    const disabledCount = () => (db.prepare(`SELECT COUNT(*) AS n FROM events WHERE type = 'AccountDisabled'`).get() as { n: number }).n;
    try {
      // The claim committed, the action did not happen.
      const row = db.prepare('SELECT action, claimed_by, claimed_until, due_at FROM deadlines WHERE identity_id = ?').get(id) as any;
      expect(row.action).toBe('disable-inactive');
      expect(row.claimed_by).toEqual(expect.stringMatching(/:\d+:/));
      expect(row.claimed_until).toBeGreaterThan(Date.now());
      expect(disabledCount()).toBe(0);

      // Restarted without the failpoint: the abandoned claim is taken over and fired.
      const w = startWorker(workerEnv);
      try {
        await waitFor('the restarted worker to disable the account', async () => disabledCount() === 1, 15_000);
      } finally {
        w.child.kill('SIGTERM');
      }
      const stopped = await w.exited;
      expect([stopped.code, stopped.signal]).toEqual([0, null]);
      // Once more, to see that nothing fires twice.
      const again = startWorker(workerEnv);
      try {
        await waitFor('the worker to start', async () => again.output().includes('idlc worker running'), 15_000);
        await sleep(500); // its first scheduler run happens right after start
      } finally {
        again.child.kill('SIGTERM');
      }
      expect((await again.exited).code).toBe(0);
      expect(disabledCount()).toBe(1);
      expect((db.prepare('SELECT COUNT(*) AS n FROM deadlines').get() as { n: number }).n).toBe(0);
    } finally {
      db.close();
    }

    // Everything as the API reports it: one disable, by the saga, effective at the deadline.
    const t2 = await startTestApp({ SQLITE_FILE: file, ...policy });
    try {
      const disabled = ofType(await history(t2, id), 'AccountDisabled');
      expect(disabled.map((e) => [e.data, e.source])).toEqual([[{ reason: 'inactive', source: 'saga', effectiveAt: deadline }, 'saga']]);
      expect((await t2.get(`/identities/${id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'inactive' });
    } finally {
      await closeKeepingData(t2);
    }
  }, 60_000);
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
