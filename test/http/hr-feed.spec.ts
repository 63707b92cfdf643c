import { startTestApp, TestApp } from '../support/app';
import { serviceEnv } from '../support/services';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

const hire = (eventId: string, employeeId: string, attrs: Record<string, unknown> = {}, effectiveDate = '2026-01-05') => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate,
  attributes: { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London', ...attrs },
});

const roleNames = (identity: any) => [...new Set(identity.roles.map((r: any) => r.role))].sort();

describe.each(backends)('HR feed webhooks, driven as an HR system would (%s)', (_name, env) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp(env);
  });
  afterEach(async () => {
    await t.close();
  });

  it('hire grants birthright roles by rule; a department change swaps them and keeps manual roles', async () => {
    const r = await t.hr(hire('evt-1', 'E1001'));
    expect(r.status).toBe(200);
    expect(r.body.results[0]).toMatchObject({ eventId: 'evt-1', status: 'applied' });
    const id = r.body.results[0].identityId;
    // New identities get a UUIDv7 (time-ordered) id.
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await t.settle();
    let got = await t.get(`/identities/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('active');
    expect(roleNames(got.body)).toEqual(['employee-basic', 'github-developer', 'jira-user', 'office-access']);
    expect(got.body.roles.find((x: any) => x.role === 'github-developer').source).toEqual({ kind: 'birthright', ruleId: 'engineering' });

    expect((await t.post(`/identities/${id}/roles`, { role: 'prod-db-readonly' })).status).toBe(200);

    t.clock.advance(30 * 86400_000);
    const move = await t.hr({ eventId: 'evt-2', type: 'change', employeeId: 'E1001', effectiveDate: '2026-02-04', attributes: { department: 'Finance' } });
    expect(move.status).toBe(200);
    expect(move.body.results[0].status).toBe('applied');
    await t.settle();
    got = await t.get(`/identities/${id}`);
    expect(roleNames(got.body)).toEqual(['employee-basic', 'erp-finance', 'office-access', 'prod-db-readonly']);
    expect(got.body.roles.find((x: any) => x.role === 'prod-db-readonly').source.kind).toBe('manual');
    const history = await t.get(`/identities/${id}/history`);
    const revoked = history.body.events.filter((e: any) => e.type === 'RoleRevoked').map((e: any) => e.data);
    expect(revoked).toEqual(
      expect.arrayContaining([
        { role: 'github-developer', source: { kind: 'birthright', ruleId: 'engineering' }, reason: 'recomputed' },
        { role: 'jira-user', source: { kind: 'birthright', ruleId: 'engineering' }, reason: 'recomputed' },
      ]),
    );
    expect(history.body.events.every((e: any) => typeof e.position === 'number' && e.recordedAt && e.source)).toBe(true);
  });

  it('state as of an instant before a move returns the pre-move roles', async () => {
    const id = (await t.hr(hire('h-1', 'E2001'))).body.results[0].identityId;
    const beforeMove = t.clock.now().toISOString();
    t.clock.advance(3600_000);
    await t.hr({ eventId: 'c-1', type: 'change', employeeId: 'E2001', effectiveDate: '2026-01-05', attributes: { department: 'Sales' } });
    const past = await t.get(`/identities/${id}/state?at=${encodeURIComponent(beforeMove)}`);
    expect(past.status).toBe(200);
    expect(past.body.identity.heldRoles).toEqual(['employee-basic', 'github-developer', 'jira-user', 'office-access']);
    expect(past.body.identity.attributes.department).toBe('Engineering');
    const now = await t.get(`/identities/${id}/state?at=${encodeURIComponent(t.clock.now().toISOString())}`);
    expect(now.body.identity.heldRoles).toEqual(['crm-user', 'employee-basic', 'office-access']);
    const beforeHire = await t.get(`/identities/${id}/state?at=2025-12-31T00:00:00Z`);
    expect(beforeHire.body).toMatchObject({ existed: false, identity: null });
    await t.settle();
    const members = await t.get(`/roles/github-developer/members?at=${encodeURIComponent(beforeMove)}`);
    expect(members.body.members.map((m: any) => m.identityId)).toEqual([id]);
    const membersNow = await t.get('/roles/github-developer/members');
    expect(membersNow.body.members).toEqual([]);
  });

  it('a future-dated termination leaves the account active until its date; rehire reuses the identity', async () => {
    const id = (await t.hr(hire('h-1', 'E3001'))).body.results[0].identityId;
    const term = await t.hr({ eventId: 't-1', type: 'terminate', employeeId: 'E3001', effectiveDate: '2026-01-31', reason: 'resignation' });
    expect(term.body.results[0].status).toBe('applied');
    await t.settle();
    let got = await t.get(`/identities/${id}`);
    expect(got.body.status).toBe('active');
    expect(got.body.termination).toEqual({ effectiveAt: '2026-01-31T00:00:00.000Z', reason: 'resignation', applied: false });
    expect(got.body.heldRoles.length).toBeGreaterThan(0);

    // Once the date has passed, the next fact about this identity applies the termination first.
    t.clock.set('2026-02-02T10:00:00Z');
    await t.hr({ eventId: 'c-9', type: 'change', employeeId: 'E3001', effectiveDate: '2026-02-02', attributes: { title: 'Former' } });
    await t.settle();
    got = await t.get(`/identities/${id}`);
    expect(got.body.status).toBe('disabled');
    expect(got.body.employment).toBe('terminated');
    expect(got.body.heldRoles).toEqual([]);

    t.clock.set('2026-02-10T10:00:00Z');
    const rehire = await t.hr({ eventId: 'r-1', type: 'rehire', employeeId: 'E3001', effectiveDate: '2026-02-10', attributes: { department: 'Sales' } });
    expect(rehire.body.results[0]).toMatchObject({ status: 'applied', identityId: id });
    await t.settle();
    got = await t.get(`/identities/${id}`);
    expect(got.body.status).toBe('active');
    expect(got.body.employment).toBe('active');
    expect(got.body.heldRoles).toEqual(['crm-user', 'employee-basic', 'office-access']);
    const list = await t.get('/identities?employeeId=E3001');
    expect(list.body.items).toHaveLength(1);
  });

  it('serves the OpenAPI document and looks identities up by role and status, page by page', async () => {
    const doc = await t.get('/docs/openapi.json');
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/hr/events', '/identities/{id}/history', '/identities/{id}/state', '/roles/{role}/members']));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.hr(hire(`p-${i}`, `P${i}`, { department: i < 3 ? 'Engineering' : 'Sales' }))).body.results[0].identityId);
    await t.settle();
    const first = await t.get('/identities?role=github-developer&status=active&limit=2');
    expect(first.body.items).toHaveLength(2);
    const second = await t.get(`/identities?role=github-developer&status=active&limit=2&after=${first.body.next}`);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.next).toBeNull();
    const found = [...first.body.items, ...second.body.items].map((i: any) => i.identityId).sort();
    expect(found).toEqual(ids.slice(0, 3).sort());
    expect((await t.get('/identities?status=gone')).status).toBe(400);
    expect((await t.get('/identities?colour=blue')).status).toBe(400);
  });

  it('an email change keeps one identity', async () => {
    const id = (await t.hr(hire('h-1', 'E4001', { email: 'old@example.com' }))).body.results[0].identityId;
    await t.hr({ eventId: 'c-1', type: 'change', employeeId: 'E4001', effectiveDate: '2026-01-06', attributes: { email: 'new@example.com' } });
    await t.settle();
    expect((await t.get('/identities?email=old@example.com')).body.items).toHaveLength(0);
    const byNew = await t.get('/identities?email=NEW@example.com');
    expect(byNew.body.items.map((i: any) => i.identityId)).toEqual([id]);
    expect((await t.get('/identities?employeeId=E4001')).body.items).toHaveLength(1);
  });

  it('a duplicate webhook appends nothing and answers the same identity', async () => {
    const first = await t.hr(hire('dup-1', 'E5001'));
    const count = await t.eventCount();
    const again = await t.hr(hire('dup-1', 'E5001'));
    expect(again.status).toBe(200);
    expect(again.body.results[0]).toMatchObject({ status: 'duplicate', identityId: first.body.results[0].identityId, appended: 0 });
    expect(await t.eventCount()).toBe(count);
    // A retried batch containing already-applied events appends only the new one.
    const batch = await t.hr({ events: [hire('dup-1', 'E5001'), { eventId: 'dup-2', type: 'change', employeeId: 'E5001', effectiveDate: '2026-01-06', attributes: { title: 'Senior Engineer' } }] });
    expect(batch.body.summary).toEqual({ applied: 1, unchanged: 0, duplicate: 1, rejected: 0 });
    expect(await t.eventCount()).toBe(count + 1);
  });

  it('refuses bad payloads with problem+json naming each field, and appends nothing', async () => {
    await t.hr(hire('ok-1', 'E6001'));
    const count = await t.eventCount();
    const bad = await t.hr({ events: [{ eventId: '', type: 'fire', employeeId: 'E 1', effectiveDate: 'yesterday', attributes: { email: 'nope', favouriteColour: 'red' } }] });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    const fields = bad.body.errors.map((e: any) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(['events[0].eventId', 'events[0].type', 'events[0].employeeId', 'events[0].effectiveDate', 'events[0].attributes.email', 'events[0].attributes.favouriteColour']),
    );
    // One bad event spoils the whole batch: nothing of it is applied.
    const mixed = await t.hr({ events: [hire('ok-2', 'E6002'), { ...hire('ok-3', 'E6003'), effectiveDate: '2026-13-45' }] });
    expect(mixed.status).toBe(400);
    expect(mixed.body.errors.map((e: any) => e.field)).toEqual(['events[1].effectiveDate']);
    expect((await t.hr(null)).status).toBe(400);
    expect((await t.hr([1, 2])).status).toBe(400);
    expect((await t.hr(undefined, { raw: '{"eventId": ' })).status).toBe(400);
    expect((await t.hr({ events: Array.from({ length: 1001 }, (_, i) => hire(`b-${i}`, `B${i}`)) })).status).toBe(400);
    expect(await t.eventCount()).toBe(count);
  });

  it('refuses unsigned, wrongly signed and stale webhooks with 401', async () => {
    const body = hire('sig-1', 'E7001');
    const unsigned = await fetch(`${t.url}/hr/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...t.auth }, body: JSON.stringify(body) });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as any).type).toMatch(/invalid_signature$/);
    expect((await t.hr(body, { secret: 'another-secret-0123456789' })).status).toBe(401);
    expect((await t.hr(body, { timestamp: Math.floor(t.clock.now().getTime() / 1000) - 3600 })).status).toBe(401);
    expect(await t.eventCount()).toBe(0);
  });

  it('accepts a batch of 1,000 events in one call', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => hire(`bulk-${i}`, `BULK${i}`, { department: i % 2 ? 'Sales' : 'Engineering', email: `u${i}@example.com` }));
    const r = await t.hr({ events });
    expect(r.status).toBe(200);
    expect(r.body.summary).toEqual({ applied: 1000, unchanged: 0, duplicate: 0, rejected: 0 });
    await t.settle();
    const sales = await t.get('/roles/crm-user/members');
    expect(sales.body.members).toHaveLength(500);
  }, 60_000);

  it('a mixed batch answers in its own order, one employee in sequence and the others beside it; resent, all duplicates', async () => {
    const events = [
      hire('mix-1', 'MIX-A', { department: 'Engineering' }),
      hire('mix-2', 'MIX-B', { department: 'Sales', email: 'b@example.com' }),
      { eventId: 'mix-3', type: 'change', employeeId: 'MIX-A', effectiveDate: '2026-01-06', attributes: { department: 'Sales' } },
      ...Array.from({ length: 60 }, (_, i) => hire(`mix-f${i}`, `MIX-F${i}`, { email: `f${i}@example.com` })),
      { eventId: 'mix-4', type: 'terminate', employeeId: 'MIX-A', effectiveDate: '2026-01-07' },
      { eventId: 'mix-5', type: 'change', employeeId: 'MIX-NOBODY', effectiveDate: '2026-01-06', attributes: { title: 'x' } },
    ];
    const r = await t.hr({ events });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: any) => x.eventId)).toEqual(events.map((e) => e.eventId));
    expect(r.body.results.map((x: any) => x.status)).toEqual(['applied', 'applied', 'applied', ...Array(60).fill('applied'), 'applied', 'rejected']);
    expect(r.body.summary).toEqual({ applied: 64, unchanged: 0, duplicate: 0, rejected: 1 });
    const a = r.body.results[0].identityId;
    expect(r.body.results[2].identityId).toBe(a);
    expect(r.body.results[63].identityId).toBe(a);
    expect(new Set(r.body.results.slice(0, 64).map((x: any) => x.identityId)).size).toBe(62);
    // MIX-A's hire, change and termination were applied in the batch's order.
    const history = (await t.get(`/identities/${a}/history`)).body.events.map((e: any) => e.type);
    expect(history.indexOf('IdentityHired')).toBeGreaterThanOrEqual(0);
    expect(history.indexOf('IdentityHired')).toBeLessThan(history.indexOf('AttributesChanged'));
    expect(history.indexOf('AttributesChanged')).toBeLessThan(history.indexOf('IdentityTerminated'));
    // The same batch again: every applied event is a duplicate, nothing is appended.
    const count = await t.eventCount();
    const again = await t.hr({ events });
    expect(again.body.results.map((x: any) => x.identityId)).toEqual(r.body.results.map((x: any) => x.identityId));
    expect(again.body.summary).toEqual({ applied: 0, unchanged: 0, duplicate: 64, rejected: 1 });
    expect(await t.eventCount()).toBe(count);
  });

  it('rejects a change for an unknown employee with a problem, appending nothing', async () => {
    const r = await t.hr({ eventId: 'x-1', type: 'change', employeeId: 'NOPE', effectiveDate: '2026-01-05', attributes: { title: 'x' } });
    expect(r.status).toBe(404);
    expect(r.body.type).toMatch(/unknown_employee$/);
    expect(await t.eventCount()).toBe(0);
  });

  it('answers a retried rejected event with the same rejection, not as a duplicate', async () => {
    await t.hr(hire('h-1', 'E8001'));
    await t.hr({ eventId: 't-1', type: 'terminate', employeeId: 'E8001', effectiveDate: '2026-01-04' });
    const count = await t.eventCount();
    const again = { eventId: 't-2', type: 'terminate', employeeId: 'E8001', effectiveDate: '2026-01-03' };
    const first = await t.hr(again);
    expect(first.status).toBe(409);
    expect(first.body.type).toMatch(/terminated$/);
    const retry = await t.hr(again);
    expect(retry.status).toBe(409);
    expect(retry.body.type).toMatch(/terminated$/);
    expect(await t.eventCount()).toBe(count);
  });

  it('rebuilt projections equal the live ones, and cached aggregates equal a full replay', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await t.hr(hire(`rb-${i}`, `RB${i}`, { department: i % 3 ? 'Finance' : 'Engineering' }))).body.results[0].identityId);
    for (let i = 0; i < 20; i += 2) await t.hr({ eventId: `rbc-${i}`, type: 'change', employeeId: `RB${i}`, effectiveDate: '2026-01-06', attributes: { department: 'Sales' } });
    await t.hr({ eventId: 'rbt-1', type: 'terminate', employeeId: 'RB1', effectiveDate: '2026-01-01' });
    await t.settle();
    const dump = async () => ({
      identities: await t.engine.readDb.all('SELECT * FROM identities ORDER BY identity_id'),
      roles: await t.engine.readDb.all('SELECT * FROM role_assignments ORDER BY identity_id, role, source_key, granted_position'),
      timeline: await t.engine.readDb.all('SELECT * FROM audit_timeline ORDER BY position'),
    });
    const live = await dump();
    expect(live.identities).toHaveLength(20);
    await t.engine.projections.stop();
    await t.engine.projections.reset();
    await t.engine.projections.runToHead();
    expect(await dump()).toEqual(live);
    for (const id of ids) expect(await t.engine.repository.load(id)).toEqual(await t.engine.repository.replay(id));
  });
});
