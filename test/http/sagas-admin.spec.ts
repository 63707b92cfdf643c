import { startTestApp, TestApp } from '../support/app';
import { DAY, hire, history, ofType, upcoming } from '../sagas/helpers';

/** Manual disable and enable by operators, and how they interact with the scheduled deadlines. */
describe('admin disable / enable with the deprovisioning sagas', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({ INACTIVITY_WARNING_DAYS: '0' });
  });
  afterEach(async () => {
    await t.close();
  });

  it('disable records the reason and note and drops the inactivity deadline; enable restarts the inactivity count', async () => {
    const id = await hire(t, 'C1', { employmentType: 'contractor' });
    await t.settle();
    t.clock.advance(10 * DAY);
    const off = await t.post(`/identities/${id}/disable`, { reason: 'reconciliation', note: 'access review 2026-Q1' });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ identity: { status: 'disabled', disabledReason: 'reconciliation' }, appended: ['AccountDisabled'] });
    const disabled = ofType(await history(t, id), 'AccountDisabled');
    expect(disabled.map((e) => [e.data, e.source])).toEqual([
      [{ reason: 'reconciliation', source: 'admin', effectiveAt: '2026-01-15T09:00:00.000Z', note: 'access review 2026-Q1' }, 'admin'],
    ]);
    await t.settle();
    expect(await upcoming(t)).toEqual([]);
    // Nothing fires for a disabled account, however long it stays untouched.
    t.clock.advance(100 * DAY);
    expect(await t.engine.scheduler.runDue()).toBe(0);

    const on = await t.post(`/identities/${id}/enable`, { note: 'reviewed' });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ identity: { status: 'active' }, appended: expect.arrayContaining(['AccountEnabled']) });
    const enabled = (await t.get(`/identities/${id}/history`)).body.events.filter((e: any) => e.type === 'AccountEnabled');
    expect(enabled.map((e: any) => e.data)).toEqual([{ reason: 'admin', source: 'admin', note: 'reviewed' }]);
    await t.settle();
    const enabledAt = t.clock.now().getTime();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'disable-inactive', dueAt: new Date(enabledAt + 30 * DAY).toISOString() }]);
    t.clock.set(enabledAt + 30 * DAY);
    expect(await t.engine.scheduler.runDue()).toBe(1);
    expect(ofType(await history(t, id), 'AccountDisabled').map((e) => e.data.reason)).toEqual(['reconciliation', 'inactive']);
  });

  it('an admin disable does not cancel a pending termination: it still takes effect and revokes the roles at its date', async () => {
    const id = await hire(t, 'E2');
    await t.hr({ eventId: 't-2', type: 'terminate', employeeId: 'E2', effectiveDate: '2026-01-20', reason: 'misconduct' });
    expect((await t.post(`/identities/${id}/disable`, { note: 'suspended pending exit' })).status).toBe(200);
    await t.settle();
    expect(await upcoming(t)).toEqual([{ identityId: id, action: 'terminate', dueAt: '2026-01-20T00:00:00.000Z' }]);
    t.clock.set('2026-01-20T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
    const got = (await t.get(`/identities/${id}`)).body;
    expect([got.status, got.employment, got.heldRoles]).toEqual(['disabled', 'terminated', []]);
    expect(ofType(await history(t, id), 'AccountDisabled').map((e) => [e.data.reason, e.source])).toEqual([
      ['admin', 'admin'],
      ['terminated', 'saga'],
    ]);
  });

  it('refuses bad input and forbidden transitions with problem+json and appends nothing', async () => {
    const id = await hire(t, 'E3');
    await t.hr({ eventId: 't-3', type: 'terminate', employeeId: 'E3', effectiveDate: '2026-01-05', reason: 'resignation' });
    await t.settle();
    const count = await t.eventCount();
    const cases: [string, unknown, number, string][] = [
      [`/identities/${id}/disable`, { reason: 'inactive' }, 400, 'validation_failed'],
      [`/identities/${id}/disable`, { note: 'x'.repeat(501) }, 400, 'validation_failed'],
      [`/identities/${id}/enable`, {}, 409, 'terminated'],
      ['/identities/00000000-0000-4000-8000-000000000000/disable', {}, 404, 'identity_not_found'],
      ['/identities/not%20an%20id/enable', {}, 400, 'validation_failed'],
    ];
    for (const [path, body, status, slug] of cases) {
      const r = await t.post(path, body);
      expect([path, r.status, r.headers.get('content-type'), r.body.type]).toEqual([
        path,
        status,
        'application/problem+json; charset=utf-8',
        `https://idlc.dev/problems/${slug}`,
      ]);
    }
    expect(await t.eventCount()).toBe(count);
  });
});
