import { createCredentialWithCli } from '../support/cli';
import { ManualClock } from '@idlc/domain';
import { Engine, HrFeedService, loadConfig } from '@idlc/engine';
import type { StoredEvent } from '@idlc/event-store';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { API_MAIN, dumpProjections, httpRequest, HttpOutcome, readAllEvents, ROOT, spawnBuilt, Spawned } from '../support/built';

/**
 * Graceful stop (issue #9): SIGTERM while many large signed HR batches are being applied. The
 * built server must finish and acknowledge what it had accepted, refuse what comes after, flush
 * projection checkpoints and exit 0; nothing it did not acknowledge may be half-stored.
 */
const SECRET = 'sigterm-test-hr-secret-0123456789';
const POLICY = join(ROOT, 'config/birthright.yaml');
const REQUESTS = 8;
const HIRES_PER_REQUEST = 500;

type Hire = { eventId: string; type: 'hire'; employeeId: string; effectiveDate: string; attributes: Record<string, string> };

const hire = (tag: string, i: number): Hire => {
  const employeeId = `${tag}${String(i).padStart(5, '0')}`;
  return {
    eventId: `${employeeId}-hire`,
    type: 'hire',
    employeeId,
    effectiveDate: '2026-01-05',
    attributes: { givenName: 'Given', familyName: employeeId, email: `${employeeId.toLowerCase()}@example.com`, department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' },
  };
};

/** An hr:write credential, created with the CLI before the server starts (as an operator would). */
let AUTH: Record<string, string> = {};

const signedPost = (url: string, events: Hire[], agent: Agent | false): Promise<HttpOutcome> => {
  const raw = JSON.stringify({ events });
  return httpRequest(`${url}/hr/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AUTH, [SIGNATURE_HEADER]: sign(SECRET, raw, Math.floor(Date.now() / 1000)) },
    body: raw,
    agent,
  });
};



/** Events one such hire appends when nothing interrupts it. */
async function eventsPerHire(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-sigterm-ref-'));
  const engine = await Engine.open({ config: loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }), clock: new ManualClock('2026-03-01T09:00:00.000Z') });
  try {
    await new HrFeedService(engine.commands).applyAll([hire('REF', 0)], { source: 'hr-webhook', actor: 'reference', correlationId: 'ref' });
    return (await readAllEvents(engine)).length;
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SIGTERM with HR webhook batches in flight (built server, SQLite)', () => {
  let dir: string;
  const spawned: Spawned[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-sigterm-'));
  });
  afterEach(() => {
    for (const s of spawned) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it(`drains ${REQUESTS} x ${HIRES_PER_REQUEST}-hire requests, refuses later ones, flushes checkpoints and exits 0`, async () => {
    const perHire = await eventsPerHire();
    expect(perHire).toBeGreaterThanOrEqual(2);
    const env = { PORT: '0', DATA_DIR: dir, HR_WEBHOOK_SECRETS: SECRET, BIRTHRIGHT_POLICY_FILE: POLICY, KAFKA_BROKERS: '', LOG_LEVEL: 'warn', EVENT_STORE: 'sqlite' };
    AUTH = { authorization: `Bearer ${createCredentialWithCli(env, ['hr:write'], 'hr-system')}` };
    const server = await spawnBuilt(API_MAIN, env);
    spawned.push(server);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });
    const idle = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      // Keep-alive connections opened before the signal and left idle: reused for late requests below.
      for (const r of await Promise.all([0, 1, 2].map(() => httpRequest(`${server.url}/health`, { agent: idle })))) expect(r).toMatchObject({ status: 200 });

      const batches = Array.from({ length: REQUESTS }, (_, r) => Array.from({ length: HIRES_PER_REQUEST }, (_, i) => hire(`R${r}E`, i)));
      const inFlight = batches.map((b) => signedPost(server.url, b, keepAlive));
      const answeredAt = inFlight.map(() => 0);
      inFlight.forEach((p, i) => void p.then(() => (answeredAt[i] = Date.now())));
      // The signal lands a quarter of the way through (the server answers /metrics between HR events).
      const quarter = (REQUESTS * HIRES_PER_REQUEST * perHire) / 4;
      for (let head = 0; head < quarter; ) {
        await new Promise((r) => setTimeout(r, 10));
        const m = await httpRequest(`${server.url}/metrics`, { agent: false });
        head = 'body' in m ? Number(/^idlc_event_store_head_position (\d+)$/m.exec(m.body)?.[1] ?? 0) : 0;
      }
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      while (!server.output().includes('SIGTERM: stopping')) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 100));

      // Late requests: on new connections and on the idle keep-alive ones. Refused (no connection, or 503), never applied.
      const late = [0, 1, 2, 3, 4, 5].map((k) => [hire('LATE', k)]);
      const lateOutcomes = await Promise.all(late.map((b, k) => signedPost(server.url, b, k < 3 ? false : idle)));
      const stillDraining = server.child.exitCode === null;
      const lateDone = Date.now();
      for (const o of lateOutcomes) {
        if ('status' in o) expect(o.status).toBe(503);
        else expect(o.error).toMatch(/ECONNREFUSED|ECONNRESET|EPIPE|socket hang up/);
      }

      const outcomes = await Promise.all(inFlight);
      const code = await Promise.race([server.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000).unref())]);
      const stopMs = Date.now() - signalled;
      expect(code).toBe(0);
      // Every request accepted before the signal was finished and acknowledged, none cut off.
      expect(outcomes.map((o) => ('status' in o ? o.status : o.error))).toEqual(batches.map(() => 200));
      for (const o of outcomes) {
        const results = JSON.parse((o as { body: string }).body).results as { status: string }[];
        expect(results.filter((r) => r.status === 'applied')).toHaveLength(HIRES_PER_REQUEST);
      }
      // Every batch was answered after the signal, and after the late requests had been refused:
      // they came while the server was still draining (else this proves little).
      const drained = answeredAt.filter((t) => t > lateDone).length;
      expect(drained).toBe(REQUESTS);
      expect(stillDraining).toBe(true);

      // The data as the stopped process left it, before anything runs again.
      const engine = await Engine.open({ config: loadConfig({ ...env, LOG_LEVEL: 'silent' }) });
      try {
        const events = await readAllEvents(engine);
        const head = await engine.store.headPosition();
        // Checkpoints were flushed: every projection is at the head without having run since.
        if (engine.projections.status().some((p) => p.position !== head)) console.log(`[sigterm] server output:\n${server.output()}\nlast events: ${JSON.stringify((await engine.store.readAll({ fromPosition: head - 9, maxCount: 20 })).map((e) => [e.position, e.type, e.metadata.hrEventId, e.recordedAt]))}`);
        expect(engine.projections.status().map((p) => [p.name, p.position])).toEqual(engine.projections.status().map((p) => [p.name, head]));
        // Each acknowledged hire is stored whole (its full set of events, once); nothing of the refused ones.
        const byHrEvent = new Map<string, number>();
        for (const e of events) byHrEvent.set(e.metadata.hrEventId as string, (byHrEvent.get(e.metadata.hrEventId as string) ?? 0) + 1);
        expect(byHrEvent.size).toBe(REQUESTS * HIRES_PER_REQUEST);
        expect([...byHrEvent.values()].filter((n) => n !== perHire)).toEqual([]);
        expect([...byHrEvent.keys()].filter((k) => k.startsWith('LATE'))).toEqual([]);
        expect(events).toHaveLength(REQUESTS * HIRES_PER_REQUEST * perHire);
        // Read models as left equal a rebuild from event zero.
        const live = await dumpProjections(engine);
        expect(live.identities).toHaveLength(REQUESTS * HIRES_PER_REQUEST);
        await engine.projections.reset();
        await engine.projections.runToHead();
        expect(await dumpProjections(engine)).toEqual(live);
      } finally {
        await engine.close();
      }

      // Restarted on the same data: ready at once with no projection lag.
      const again = await spawnBuilt(API_MAIN, env);
      spawned.push(again);
      const ready = await httpRequest(`${again.url}/ready`, { agent: false });
      expect('status' in ready && ready.status).toBe(200);
      expect(JSON.parse((ready as { body: string }).body).checks.projections).toMatchObject({ status: 'caught-up', lagEvents: 0 });
      again.child.kill('SIGTERM');
      expect(await again.exited).toBe(0);
      // eslint-disable-next-line no-console
      console.log(`[sigterm] ${REQUESTS * HIRES_PER_REQUEST} hires in ${REQUESTS} requests, all answered after the signal; exit 0 ${stopMs} ms after SIGTERM; late requests: ${JSON.stringify(lateOutcomes.map((o) => ('status' in o ? o.status : o.error)))}`);
    } finally {
      keepAlive.destroy();
      idle.destroy();
    }
  }, 90_000);
});
