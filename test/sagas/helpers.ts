import { ManualClock } from '@idlc/domain';
import { loadConfig } from '@idlc/engine';
import { resolve } from 'node:path';
import { rmSync } from 'node:fs';
import type { TestApp } from '../support/app';

export const DAY = 86_400_000;

/** Engine configuration of the saga suites: the shipped birthright policy, no inactivity warning before a disable. */
export const sagaConfig = (dataDir: string, extra: Record<string, string> = {}) =>
  loadConfig({
    DATA_DIR: dataDir,
    BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'),
    LOG_LEVEL: 'silent',
    INACTIVITY_WARNING_DAYS: '0',
    ...extra,
  });

export const hireEvent = (eventId: string, employeeId: string, attrs: Record<string, unknown> = {}, effectiveDate = '2026-01-05') => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate,
  attributes: {
    givenName: 'Ada',
    familyName: 'Lovelace',
    email: `${employeeId.toLowerCase()}@example.com`,
    department: 'Engineering',
    title: 'Engineer',
    employmentType: 'employee',
    location: 'London',
    ...attrs,
  },
});

/** Hires over the signed webhook and returns the identity id. */
export async function hire(t: TestApp, employeeId: string, attrs: Record<string, unknown> = {}, effectiveDate = '2026-01-05'): Promise<string> {
  const r = await t.hr(hireEvent(`hire-${employeeId}`, employeeId, attrs, effectiveDate));
  if (r.status !== 200 || r.body.results[0].status !== 'applied') throw new Error(`hire failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.results[0].identityId;
}

export async function history(t: TestApp, id: string): Promise<any[]> {
  const r = await t.get(`/identities/${id}/history`);
  if (r.status !== 200) throw new Error(`history ${id}: ${r.status}`);
  return r.body.events;
}

export const ofType = (events: any[], type: string) => events.filter((e) => e.type === type);

export async function upcoming(t: TestApp, query = ''): Promise<any[]> {
  const r = await t.get(`/deprovisioning/upcoming${query}`);
  if (r.status !== 200) throw new Error(`upcoming: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.items.map((i: any) => ({ identityId: i.identityId, action: i.action, dueAt: i.dueAt }));
}

/** Records a login the way the SSO hook does (through the one write path). */
export async function login(t: TestApp, id: string, subject = `sub-${id}`) {
  const out = await t.engine.commands.execute(id, [{ kind: 'RecordLogin', issuer: 'https://idp.example.com', subject, protocol: 'oidc' }], {
    metadata: { source: 'sso', actor: 'https://idp.example.com' },
  });
  if (out.rejection) throw new Error(`login refused: ${out.rejection.message}`);
  return out;
}

/** Stops the server and the engine but keeps the database file (it lives outside the app's temp dir). */
export async function closeKeepingData(t: TestApp): Promise<void> {
  await t.app.close();
  await t.engine.close();
  rmSync(t.dir, { recursive: true, force: true });
}

/** A clock that runs with real time from a settable instant: for tests of the scheduler's own timer. */
export class LiveClock extends ManualClock {
  private offset = 0;
  constructor(start: string) {
    super(start);
    this.set(start);
  }
  override now(): Date {
    return new Date(Date.now() + this.offset);
  }
  override set(at: Date | string | number): void {
    this.offset = new Date(at).getTime() - Date.now();
  }
  override advance(ms: number): void {
    this.offset += ms;
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
