import { ManualClock } from '@idlc/domain';
import { DeadlineScheduler } from '@idlc/engine';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, TestApp } from '../support/app';
import { TestOidcIdp } from '../support/test-idp';
import { closeKeepingData, DAY, hire, history, LiveClock, login, ofType, upcoming, waitFor } from '../sagas/helpers';

/**
 * Deprovisioning sagas driven as in production: HR facts over the signed webhook, time moved on the
 * engine's clock, then the scheduler fires what is due (runDue, or its own timer).
 * The test clock starts at 2026-01-05T09:00Z; a hire effective 2026-01-05 is provisioned then.
 */
const PROVISIONED = Date.parse('2026-01-05T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('deprovisioning sagas over HTTP', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('an account nobody logs into is warned, then disabled for inactivity, without any login', async () => {
    t = await startTestApp();
    const id = await hire(t, 'C100', { employmentType: 'contractor' });
    await t.settle();
    const warnAt = PROVISIONED + 23 * DAY; // contractor: 30 days, warned 7 days before
    const disableAt = PROVISIONED + 30 * DAY;
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'warn-inactive', dueAt: iso(warnAt) }]);

    t.clock.set(warnAt - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    t.clock.set(warnAt);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    const warned = ofType(await history(t, id), 'InactivityWarningIssued');
    expect(warned.map((e) => [e.data, e.source, e.recordedAt])).toEqual([
      [{ lastActivityAt: iso(PROVISIONED), disableAt: iso(disableAt) }, 'saga', iso(warnAt)],
    ]);
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: iso(disableAt) }]);

    t.clock.set(disableAt - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect((await t.get(`/identities/${id}`)).body.status).toBe('active');
    t.clock.set(disableAt);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const got = (await t.get(`/identities/${id}`)).body;
    expect([got.status, got.disabledReason, got.employment]).toEqual(['disabled', 'inactive', 'active']);
    const disabled = ofType(await history(t, id), 'AccountDisabled');
    expect(disabled.map((e) => [e.data, e.source, e.actor, e.recordedAt])).toEqual([
      [{ reason: 'inactive', source: 'saga', effectiveAt: iso(disableAt) }, 'saga', 'deadline-scheduler', iso(disableAt)],
    ]);
    expect(await upcoming(t)).toEqual([]);
    expect([t.engine.scheduler.fired, t.engine.scheduler.noops, t.engine.scheduler.failures]).toEqual([2, 0, 0]);
  });

  it('a login just before the inactivity deadline defers it by the full period', async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' });
    const id = await hire(t, 'C200', { employmentType: 'contractor' });
    await t.settle();
    const deadline = PROVISIONED + 30 * DAY;
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: iso(deadline) }]);

    t.clock.set(deadline - 1);
    await login(t, id);
    await t.settle();
    const moved = deadline - 1 + 30 * DAY;
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: iso(moved) }]);
    t.clock.set(deadline);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    t.clock.set(moved - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect((await t.get(`/identities/${id}`)).body.status).toBe('active');
    expect(ofType(await history(t, id), 'AccountDisabled')).toHaveLength(0);

    t.clock.set(moved);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'inactive' });
  });

  it('a deadline claimed just as a login lands is decided on the fresh state and appends nothing', async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' });
    const id = await hire(t, 'C300', { employmentType: 'contractor' });
    await t.settle();
    const deadline = PROVISIONED + 30 * DAY;
    // The scheduler claims the row at the deadline...
    t.clock.set(deadline);
    const claimed = await t.engine.scheduler.claimDue(deadline, 10);
    expect(claimed).toEqual([{ identityId: id, dueAt: deadline, action: 'disable-inactive', revision: expect.any(Number) }]);
    // ...while a login made a millisecond earlier is appended before the scheduler's command.
    t.clock.set(deadline - 1);
    const before = await t.eventCount();
    await login(t, id);
    t.clock.set(deadline);
    expect(await t.engine.scheduler.fireClaimed(claimed)).toBe(0);
    expect(await t.eventCount()).toBe(before + 1); // the login only
    expect(ofType(await history(t, id), 'AccountDisabled')).toHaveLength(0);
    expect(t.engine.scheduler.noops).toBe(1);
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: iso(deadline - 1 + 30 * DAY) }]);
  });

  it('a future-dated termination disables and revokes exactly at its date, not a millisecond before', async () => {
    t = await startTestApp();
    const id = await hire(t, 'E400');
    const term = await t.hr({ eventId: 't-400', type: 'terminate', employeeId: 'E400', effectiveDate: '2026-01-31', reason: 'resignation' });
    expect(term.body.results[0].status).toBe('applied');
    await t.settle();
    const at = Date.parse('2026-01-31T00:00:00.000Z');
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'terminate', dueAt: iso(at) }]);
    const rolesBefore = (await t.get(`/identities/${id}`)).body.heldRoles;
    expect(rolesBefore).toEqual(['employee-basic', 'github-developer', 'jira-user', 'office-access']);

    t.clock.set(at - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body).toMatchObject({ status: 'active', employment: 'active' });

    t.clock.set(at);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const got = (await t.get(`/identities/${id}`)).body;
    expect([got.status, got.employment, got.disabledReason, got.heldRoles]).toEqual(['disabled', 'terminated', 'terminated', []]);
    const events = await history(t, id);
    expect(ofType(events, 'AccountDisabled').map((e) => [e.data, e.recordedAt])).toEqual([
      [{ reason: 'terminated', source: 'saga', effectiveAt: iso(at) }, iso(at)],
    ]);
    expect(ofType(events, 'RoleRevoked').map((e) => [e.data.role, e.data.reason]).sort()).toEqual(rolesBefore.map((r: string) => [r, 'terminated']));
    // Next: deletion after the 30-day retention.
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'delete', dueAt: '2026-03-02T00:00:00.000Z' }]);
  });

  it('after retention the account is deleted: personal attributes leave the read model, the history stays', async () => {
    t = await startTestApp();
    const id = await hire(t, 'E500', { givenName: 'Grace', familyName: 'Hopper', email: 'grace@example.com', phone: '+44 20 7946 0000' });
    await t.hr({ eventId: 't-500', type: 'terminate', employeeId: 'E500', effectiveDate: '2026-01-20', reason: 'retirement' });
    await t.settle();
    t.clock.set('2026-01-20T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    const deleteAt = Date.parse('2026-02-19T00:00:00.000Z');
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'delete', dueAt: iso(deleteAt) }]);

    t.clock.set(deleteAt - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect((await t.get(`/identities/${id}`)).body.attributes.email).toBe('grace@example.com');
    t.clock.set(deleteAt);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const got = (await t.get(`/identities/${id}`)).body;
    expect(got.status).toBe('deleted');
    expect(got.attributes).toEqual({ department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' });
    expect((await t.get('/identities?email=grace@example.com')).body.items).toEqual([]);
    const events = await history(t, id);
    expect(ofType(events, 'AccountDeleted').map((e) => [e.data, e.source, e.recordedAt])).toEqual([[{ reason: 'retention', source: 'saga' }, 'saga', iso(deleteAt)]]);
    // The facts stay in the stream for audit.
    expect(ofType(events, 'IdentityHired')[0].data.attributes).toMatchObject({ givenName: 'Grace', familyName: 'Hopper', email: 'grace@example.com' });
    expect(await upcoming(t)).toEqual([]);
  });

  it('a rehire before deletion cancels it and re-enables on the rehire date', async () => {
    t = await startTestApp();
    const id = await hire(t, 'E600');
    await t.hr({ eventId: 't-600', type: 'terminate', employeeId: 'E600', effectiveDate: '2026-01-10', reason: 'layoff' });
    await t.settle();
    t.clock.set('2026-01-10T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'delete', dueAt: '2026-02-09T00:00:00.000Z' }]);

    t.clock.set('2026-01-20T12:00:00Z');
    const rehire = await t.hr({ eventId: 'r-600', type: 'rehire', employeeId: 'E600', effectiveDate: '2026-02-01' });
    expect(rehire.body.results[0]).toMatchObject({ status: 'applied', identityId: id });
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'activate', dueAt: '2026-02-01T00:00:00.000Z' }]);
    expect((await t.get(`/identities/${id}`)).body.status).toBe('disabled');

    t.clock.set('2026-02-01T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const got = (await t.get(`/identities/${id}`)).body;
    expect([got.status, got.employment, got.heldRoles]).toEqual(['active', 'active', ['employee-basic', 'github-developer', 'jira-user', 'office-access']]);
    expect(ofType(await history(t, id), 'AccountEnabled').map((e) => e.data)).toEqual([{ reason: 'rehire', source: 'hr' }]);

    // Past the old deletion date: nothing is deleted; the next deadline is an inactivity warning.
    t.clock.set('2026-02-10T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect(ofType(await history(t, id), 'AccountDeleted')).toHaveLength(0);
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'warn-inactive', dueAt: iso(Date.parse('2026-02-01T00:00:00Z') + 83 * DAY) }]);
  });

  it('a termination date moved by a later HR event moves the deadline (later, then earlier)', async () => {
    t = await startTestApp();
    const id = await hire(t, 'E700');
    await t.hr({ eventId: 't-700a', type: 'terminate', employeeId: 'E700', effectiveDate: '2026-02-15', reason: 'resignation' });
    await t.hr({ eventId: 't-700b', type: 'terminate', employeeId: 'E700', effectiveDate: '2026-02-20', reason: 'resignation' });
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'terminate', dueAt: '2026-02-20T00:00:00.000Z' }]);
    t.clock.set('2026-02-15T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect((await t.get(`/identities/${id}`)).body.status).toBe('active');

    await t.hr({ eventId: 't-700c', type: 'terminate', employeeId: 'E700', effectiveDate: '2026-02-17', reason: 'resignation' });
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'terminate', dueAt: '2026-02-17T00:00:00.000Z' }]);
    t.clock.set('2026-02-17T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const disabled = ofType(await history(t, id), 'AccountDisabled');
    expect(disabled.map((e) => e.data.effectiveAt)).toEqual(['2026-02-17T00:00:00.000Z']);
    t.clock.set('2026-02-20T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(0);
    expect(ofType(await history(t, id), 'AccountDisabled')).toHaveLength(1);
  });

  it('contractors are disabled after 30 days, employees after 90, and a role override is stricter still', async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0', INACTIVITY_DAYS_BY_ROLE: 'erp-finance=14' });
    const contractor = await hire(t, 'C800', { employmentType: 'contractor' });
    const employee = await hire(t, 'E800');
    const finance = await hire(t, 'E801', { department: 'Finance' });
    await t.settle();
    expect(await upcoming(t)).toEqual([
      { identityId: finance, action: 'disable-inactive', dueAt: iso(PROVISIONED + 14 * DAY) },
      { identityId: contractor, action: 'disable-inactive', dueAt: iso(PROVISIONED + 30 * DAY) },
      { identityId: employee, action: 'disable-inactive', dueAt: iso(PROVISIONED + 90 * DAY) },
    ]);
    const status = async () => Promise.all([finance, contractor, employee].map(async (id) => (await t.get(`/identities/${id}`)).body.status));

    t.clock.set(PROVISIONED + 30 * DAY - 1);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect(await status()).toEqual(['disabled', 'active', 'active']);
    t.clock.set(PROVISIONED + 30 * DAY);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect(await status()).toEqual(['disabled', 'disabled', 'active']);
    t.clock.set(PROVISIONED + 90 * DAY - 1);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    t.clock.set(PROVISIONED + 90 * DAY);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect(await status()).toEqual(['disabled', 'disabled', 'disabled']);
  });

  it('GET /deprovisioning/upcoming lists actions by due time, filters by before, limits, and refuses bad input', async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' });
    const a = await hire(t, 'C900', { employmentType: 'contractor' });
    const b = await hire(t, 'E900');
    const c = await hire(t, 'E901');
    await t.hr({ eventId: 't-901', type: 'terminate', employeeId: 'E901', effectiveDate: '2026-01-20', reason: 'resignation' });
    await t.settle();
    const all = await t.get('/deprovisioning/upcoming');
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      items: [
        { identityId: c, employeeId: 'E901', action: 'terminate', dueAt: '2026-01-20T00:00:00.000Z', inProgress: false },
        { identityId: a, employeeId: 'C900', action: 'disable-inactive', dueAt: iso(PROVISIONED + 30 * DAY), inProgress: false },
        { identityId: b, employeeId: 'E900', action: 'disable-inactive', dueAt: iso(PROVISIONED + 90 * DAY), inProgress: false },
      ],
      before: null,
      limit: 100,
      truncated: false,
    });
    expect(await upcoming(t, `?before=${iso(PROVISIONED + 30 * DAY)}`)).toEqual([{ identityId: c, action: 'terminate', dueAt: '2026-01-20T00:00:00.000Z' }]);
    expect((await upcoming(t, '?before=2026-02-05')).map((i) => i.identityId)).toEqual([c, a]);
    const one = await t.get('/deprovisioning/upcoming?limit=1');
    expect([one.body.items.map((i: any) => i.identityId), one.body.truncated]).toEqual([[c], true]);

    const count = await t.eventCount();
    for (const q of ['?before=yesterday', '?before=2026-13-45', '?limit=0', '?limit=1001', '?limit=abc', '?limit=1&limit=2', '?status=active']) {
      const r = await t.get(`/deprovisioning/upcoming${q}`);
      expect([q, r.status, r.headers.get('content-type')]).toEqual([q, 400, 'application/problem+json; charset=utf-8']);
      expect(r.body).toMatchObject({ type: 'https://idlc.dev/problems/validation_failed', status: 400 });
    }
    expect(await t.eventCount()).toBe(count);
  });

  it('a deadline claimed by a worker that died is fired once its lease expires, and the late worker appends nothing', async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' });
    const id = await hire(t, 'C1000', { employmentType: 'contractor' });
    await t.settle();
    const deadline = PROVISIONED + 30 * DAY;
    t.clock.set(deadline);
    const e = t.engine;
    const dead = new DeadlineScheduler(e.readDb, e.commands, e.clock, e.policies, undefined, { workerId: 'dead-worker', leaseMs: 60_000 });
    const claimed = await dead.claimDue(deadline, 10);
    expect(claimed.map((r) => r.identityId)).toEqual([id]);
    expect((await t.get('/deprovisioning/upcoming')).body.items[0]).toMatchObject({ identityId: id, inProgress: true });

    expect(await e.scheduler.runDue()).toBe(0);
    t.clock.set(deadline + 60_000);
    expect(await e.scheduler.runDue()).toBe(0); // the lease runs to deadline + 60 s inclusive
    t.clock.set(deadline + 60_001);
    expect(await e.scheduler.runDue()).toBe(1);
    // The "dead" worker wakes up and fires its stale claim: decided on the current state, nothing happens.
    expect(await dead.fireClaimed(claimed)).toBe(0);
    await t.settle();
    const disabled = ofType(await history(t, id), 'AccountDisabled');
    expect(disabled.map((x) => x.data)).toEqual([{ reason: 'inactive', source: 'saga', effectiveAt: iso(deadline) }]);
    expect(await upcoming(t)).toEqual([]);
  });
});

describe('deprovisioning sagas across restarts', () => {
  it('a deadline survives closing and reopening the engine on the same SQLite file, and fires once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idlc-saga-restart-'));
    const env = { SQLITE_FILE: join(dir, 'idlc.db'), INACTIVITY_WARNING_DAYS: '0' };
    try {
      const t1 = await startTestApp(env);
      const id = await hire(t1, 'C1100', { employmentType: 'contractor' });
      await t1.settle();
      await closeKeepingData(t1);

      const deadline = PROVISIONED + 30 * DAY;
      // Reopened after the deadline: the scheduler fires it on start, with no request and no login.
      const t2 = await startTestApp(env, new ManualClock(deadline + DAY));
      try {
        const events = await waitFor('the inactivity disable', async () => {
          const ev = ofType(await history(t2, id), 'AccountDisabled');
          return ev.length ? ev : null;
        });
        expect(events.map((e) => [e.data.reason, e.data.effectiveAt, e.recordedAt])).toEqual([['inactive', iso(deadline), iso(deadline + DAY)]]);
        expect(await t2.engine.scheduler.runDue()).toBe(0);
      } finally {
        await closeKeepingData(t2);
      }
      const t3 = await startTestApp(env, new ManualClock(deadline + 40 * DAY));
      try {
        expect(await t3.engine.scheduler.runDue()).toBe(0);
        expect(ofType(await history(t3, id), 'AccountDisabled')).toHaveLength(1);
        await t3.settle();
        expect(await upcoming(t3)).toEqual([]);
      } finally {
        await closeKeepingData(t3);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the scheduler's own timer", () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('wakes at the deadline by itself, never before it', async () => {
    const clock = new LiveClock('2026-01-05T09:00:00.000Z');
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' }, clock);
    const id = await hire(t, 'C1200', { employmentType: 'contractor' });
    await t.settle();
    // Nothing due for 30 days: the timer sleeps, capped so a jumping wall clock is noticed.
    await waitFor('the timer to sleep for the capped 60 s', async () => t.engine.scheduler.nextWakeInMs === 60_000);

    const provisioned = Date.parse(ofType(await history(t, id), 'AccountProvisioned')[0].recordedAt);
    const deadline = provisioned + 30 * DAY;
    clock.set(deadline - 400);
    t.engine.scheduler.wake(); // the wall clock jumped: look again now rather than at the capped wake-up
    const disabled = await waitFor('the timer to fire', async () => ofType(await history(t, id), 'AccountDisabled')[0], 4000);
    const firedAt = Date.parse(disabled.recordedAt);
    expect(firedAt).toBeGreaterThanOrEqual(deadline);
    expect(firedAt - deadline).toBeLessThan(1000);
    expect(disabled.data).toEqual({ reason: 'inactive', source: 'saga', effectiveAt: iso(deadline) });
  });

  it('is re-armed when the projection schedules an earlier deadline (a hire effective in half a second)', async () => {
    const clock = new LiveClock('2026-01-05T09:00:00.000Z');
    t = await startTestApp({}, clock);
    await waitFor('the timer to sleep (nothing scheduled)', async () => t.engine.scheduler.nextWakeInMs === 60_000);
    const effective = clock.now().getTime() + 500;
    const id = await hire(t, 'E1300', {}, iso(effective));
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body.status).toBe('pending');
    const provisioned = await waitFor('the activation', async () => ofType(await history(t, id), 'AccountProvisioned')[0], 4000);
    expect(Date.parse(provisioned.recordedAt)).toBeGreaterThanOrEqual(effective);
    expect(Date.parse(provisioned.recordedAt) - effective).toBeLessThan(1000);
    expect(provisioned.source).toBe('saga');
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body.status).toBe('active');
  });
});

describe('an SSO login through POST /sso/login defers the inactivity deadline', () => {
  let idp: TestOidcIdp;
  let dir: string;
  let t: TestApp;
  beforeAll(async () => {
    idp = await TestOidcIdp.start();
    dir = mkdtempSync(join(tmpdir(), 'idlc-saga-sso-'));
  });
  afterAll(async () => {
    await idp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await t?.close();
  });

  it('a contractor who logs in a millisecond before the deadline keeps the account for another 30 days', async () => {
    const idps = join(dir, 'idps.json');
    writeFileSync(idps, JSON.stringify([idp.config({ id: 'corp', attributeMapping: { email: 'email', employee_number: 'employeeId' }, jit: true })]));
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0', SSO_IDPS_FILE: idps });
    const id = await hire(t, 'C1400', { employmentType: 'contractor' });
    await t.settle();
    const deadline = PROVISIONED + 30 * DAY;
    t.clock.set(deadline - 1);
    const idToken = await idp.signIdToken({ alg: 'RS256', now: t.clock.now(), claims: { email: 'c1400@example.com', employee_number: 'C1400' } });
    const r = await t.post('/sso/login', { idToken });
    expect([r.status, r.body.identityId, r.body.status, r.body.provisioned]).toEqual([200, id, 'active', false]);
    await t.settle();
    const moved = deadline - 1 + 30 * DAY;
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: iso(moved) }]);
    t.clock.set(deadline);
    expect(await t.engine.scheduler.runDue()).toBe(0);
    t.clock.set(moved);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'inactive', lastLoginAt: iso(deadline - 1) });
  });
});
