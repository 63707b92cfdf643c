import { API_MAIN, dumpProjections, readAllEvents, spawnBuilt } from '../support/built';
import { createCredentialWithCli } from '../support/cli';
import { ManualClock } from '@idlc/domain';
import { Engine, HrFeedService, loadConfig } from '@idlc/engine';
import type { StoredEvent } from '@idlc/event-store';
import { PostgresDatabase } from '@idlc/sql';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { serviceEnv } from '../support/services';

/**
 * Crash safety (issue #9): a real HR client streams webhook events with retries while the built
 * server is SIGKILLed and restarted on the same data; afterwards every acknowledged event is
 * stored exactly once, no stream is half-applied, and projections equal a rebuild from zero.
 */
const ROOT = resolve(__dirname, '../..');
const SECRET = 'crash-test-hr-secret-0123456789';
const POLICY = join(ROOT, 'config/birthright.yaml');

const CHANGES_PER_EMPLOYEE = 3; // 1 hire + 3 changes per employee
const SHARDS = 6; // requests in flight; an employee always lives in one shard, so its order holds
const BATCH = 25;
const DEPARTMENTS = ['Engineering', 'Finance', 'Sales', 'Support'];

type HrEvent = { eventId: string; type: 'hire' | 'change'; employeeId: string; effectiveDate: string; attributes: Record<string, string> };

/** Per shard, the batches in send order: round r of every employee in the shard before round r+1. */
function workload(employees: number): { shards: HrEvent[][][]; last: Map<string, Record<string, string>>; total: number } {
  const shards: HrEvent[][][] = [];
  const last = new Map<string, Record<string, string>>();
  let total = 0;
  for (let s = 0; s < SHARDS; s++) {
    const emps: string[] = [];
    for (let i = s; i < employees; i += SHARDS) emps.push(`E${String(i).padStart(5, '0')}`);
    const events: HrEvent[] = [];
    for (let round = 0; round <= CHANGES_PER_EMPLOYEE; round++) {
      for (const [k, emp] of emps.entries()) {
        const department = DEPARTMENTS[(k + round) % DEPARTMENTS.length];
        const title = `Title ${round}`;
        const attributes: Record<string, string> =
          round === 0
            ? { givenName: 'Given', familyName: emp, email: `${emp.toLowerCase()}@example.com`, department, title, employmentType: 'employee', location: 'London' }
            : { department, title };
        events.push({ eventId: `${emp}-${round}`, type: round === 0 ? 'hire' : 'change', employeeId: emp, effectiveDate: '2026-01-05', attributes });
        last.set(emp, { department, title });
      }
    }
    total += events.length;
    const batches: HrEvent[][] = [];
    for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
    shards.push(batches);
  }
  return { shards, last, total };
}

/** `node dist/apps/api/src/main.js`, resolved with its URL once it listens. */
const startServer = (env: Record<string, string>) => spawnBuilt(API_MAIN, env);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Events per HR event id, from the `hrEventId` metadata every HR-caused event carries. */
function countByHrEvent(events: StoredEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    const id = e.metadata.hrEventId as string;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}


/** What the same HR events produce without any crash, applied in-process in the same per-employee order. */
async function crashFreeCounts(work: ReturnType<typeof workload>): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-crash-ref-'));
  const engine = await Engine.open({
    config: loadConfig({ DATA_DIR: dir, HR_WEBHOOK_SECRETS: SECRET, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }),
    clock: new ManualClock('2026-03-01T09:00:00.000Z'),
  });
  try {
    const hr = new HrFeedService(engine.commands);
    for (const shard of work.shards) for (const batch of shard) await hr.applyAll(batch, { source: 'hr-webhook', actor: 'hr-webhook', correlationId: 'ref' });
    return countByHrEvent(await readAllEvents(engine));
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
// 10,000 HR events on SQLite; 5,000 on PostgreSQL to keep the file under a minute on 2 cores.
const backends: [string, number, Record<string, string>][] = [['sqlite', 2500, {}]];
if (pgUrl) backends.push(['postgres', 1250, { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

describe('crash safety: SIGKILL in the middle of a retried HR webhook stream', () => {
  it.each(backends)('%s (%d employees x 4 HR events): acknowledged events stored exactly once, nothing half-applied, projections equal a rebuild', async (name, employees, extra) => {
    const work = workload(employees);
    const expected = await crashFreeCounts(work);
    expect(expected.size).toBe(work.total);
    // Kill once ~30% of the stream is acknowledged, so thousands of events come before and after.
    const killAfterAcked = Math.round(work.total * 0.3);
    const dir = mkdtempSync(join(tmpdir(), 'idlc-crash-'));
    const schema = name === 'postgres' ? `crash_${randomUUID().replace(/-/g, '').slice(0, 12)}` : undefined;
    const env: Record<string, string> = {
      PORT: '0',
      DATA_DIR: dir,
      HR_WEBHOOK_SECRETS: SECRET,
      BIRTHRIGHT_POLICY_FILE: POLICY,
      KAFKA_BROKERS: '',
      LOG_LEVEL: 'warn',
      ...extra,
      ...(schema ? { DATABASE_SCHEMA: schema } : {}),
    };
    const auth = { authorization: `Bearer ${createCredentialWithCli(env, ['hr:write'], 'hr-system')}` };
    let server = await startServer(env);
    const children = [server.child];
    try {
      let acked = 0;
      let retries = 0;
      let killed = false;
      let restarted: Promise<void> | undefined;
      const statuses = new Map<string, string>();

      // An HR system: the same request (same event ids) again on connection errors or 5xx until it gets 200.
      const send = async (batch: HrEvent[]) => {
        const raw = JSON.stringify({ events: batch });
        for (let attempt = 0; ; attempt++) {
          if (attempt) {
            retries++;
            await sleep(Math.min(20 * attempt, 200));
          }
          let res: Response;
          try {
            res = await fetch(`${server.url}/hr/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...auth, [SIGNATURE_HEADER]: sign(SECRET, raw, Math.floor(Date.now() / 1000)) },
              body: raw,
              signal: AbortSignal.timeout(15000),
            });
          } catch {
            continue; // connection refused or reset: the server is down or was killed mid-request
          }
          if (res.status >= 500) {
            await res.text().catch(() => undefined);
            continue;
          }
          const text = await res.text().catch(() => undefined);
          if (text === undefined) continue; // the connection died while the answer was streaming
          if (res.status !== 200) throw new Error(`HR request refused with ${res.status}: ${text}`);
          for (const r of JSON.parse(text).results) statuses.set(r.eventId, r.status);
          acked += batch.length;
          return;
        }
      };

      const crash = async () => {
        server.child.kill('SIGKILL');
        await server.exited;
        server = await startServer(env);
        children.push(server.child);
      };

      await Promise.all(
        work.shards.map(async (batches) => {
          for (const batch of batches) {
            await send(batch);
            if (!killed && acked >= killAfterAcked) {
              killed = true;
              restarted = crash();
            }
          }
        }),
      );
      await restarted;
      expect(killed).toBe(true);
      expect(retries).toBeGreaterThan(0);
      expect(acked).toBe(work.total);
      // A retried batch may come back as duplicate for events stored before the kill, never as rejected.
      const byStatus: Record<string, number> = {};
      for (const s of statuses.values()) byStatus[s] = (byStatus[s] ?? 0) + 1;
      expect(Object.keys(byStatus).filter((s) => s !== 'applied' && s !== 'duplicate')).toEqual([]);
      expect(statuses.size).toBe(work.total);

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);

      const engine = await Engine.open({
        config: loadConfig({ DATA_DIR: dir, HR_WEBHOOK_SECRETS: SECRET, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', KAFKA_BROKERS: '', ...extra, ...(schema ? { DATABASE_SCHEMA: schema } : {}) }),
      });
      try {
        const events = await readAllEvents(engine);
        // Exactly once: per HR event id, the same number of events as the crash-free run (a replay would double it).
        expect(events.length).toBe([...expected.values()].reduce((a, b) => a + b, 0));
        expect(countByHrEvent(events)).toEqual(expected);
        expect(new Set(events.map((e) => e.id)).size).toBe(events.length);

        // No half-applied request: every stream has gapless revisions and each HR event's events are contiguous in it.
        const streams = new Map<string, StoredEvent[]>();
        for (const e of events) streams.set(e.streamId, [...(streams.get(e.streamId) ?? []), e]);
        expect(streams.size).toBe(employees);
        for (const evs of streams.values()) {
          expect(evs.map((e) => e.revision)).toEqual(evs.map((_, i) => i));
          const order = evs.map((e) => e.metadata.hrEventId as string).filter((id, i, a) => i === 0 || a[i - 1] !== id);
          expect(new Set(order).size).toBe(order.length);
          expect(order).toEqual([...order].sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1])));
        }

        // Each employee ends with the attributes of the last change sent for them.
        await engine.projections.runToHead();
        const rows = await engine.readDb.all<{ employee_id: string; department: string; state: string }>('SELECT employee_id, department, state FROM identities');
        expect(rows).toHaveLength(employees);
        for (const row of rows) {
          const want = work.last.get(row.employee_id)!;
          const attrs = JSON.parse(row.state).attributes;
          expect({ employee: row.employee_id, department: attrs.department, title: attrs.title }).toEqual({ employee: row.employee_id, ...want });
          expect(row.department).toBe(want.department);
        }

        // Projections as the restarted server left them equal a rebuild from event zero.
        const live = await dumpProjections(engine);
        expect(live.auditTimeline).toHaveLength(events.length);
        await engine.projections.reset();
        await engine.projections.runToHead();
        expect(await dumpProjections(engine)).toEqual(live);
        // eslint-disable-next-line no-console
        console.log(`[crash ${name}] ${work.total} HR events, ${events.length} stored events, ${retries} retried requests, statuses ${JSON.stringify(byStatus)}`);
      } finally {
        await engine.close();
      }
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      if (schema) {
        const admin = new PostgresDatabase({ connectionString: pgUrl! });
        await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.close();
      }
    }
  }, 60000);
});
