import { ManualClock } from '@idlc/domain';
import { Engine, loadConfig } from '@idlc/engine';
import { resolve } from 'node:path';
import { weeklyFlowQuery } from '../../apps/api/src/ui/dashboard.controller';
import { startTestApp, TestApp } from '../support/app';
import { tempDirPerTest } from '../support/temp-dir';

const DAY = 86400_000;
const hire = (eventId: string, employeeId: string, attrs: Record<string, unknown>, effectiveDate = '2026-01-05') => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate,
  attributes: { department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London', ...attrs },
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('audit API for the /ui page: search by name/email prefix and external key, dashboard, deadlines', () => {
  let t: TestApp;
  let ada: string;
  let grace: string;
  let alan: string;
  beforeAll(async () => {
    t = await startTestApp();
    ada = (await t.hr(hire('h-1', 'E1001', { givenName: 'Ada', familyName: 'Lovelace', displayName: 'Ada Lovelace', email: 'ada@example.com' }))).body.results[0].identityId;
    grace = (await t.hr(hire('h-2', 'E1002', { givenName: 'Grace', familyName: 'Hopper', displayName: 'Grace Hopper', email: 'g.hopper@example.com', department: 'Sales' })))
      .body.results[0].identityId;
    alan = (await t.hr(hire('h-3', 'E1003', { givenName: 'Alan', familyName: 'Turing', displayName: 'Alan Turing', email: 'alan@example.com' }))).body.results[0].identityId;
    t.clock.advance(8 * DAY);
    expect((await t.hr({ eventId: 'c-1', type: 'change', employeeId: 'E1001', effectiveDate: '2026-01-13', attributes: { department: 'Finance' } })).status).toBe(200);
    // Alan leaves, is disabled at his date, and deleted once the retention period is over.
    await t.hr({ eventId: 't-3', type: 'terminate', employeeId: 'E1003', effectiveDate: '2026-01-14', reason: 'resigned' });
    await t.settle();
    t.clock.set('2026-01-14T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    t.clock.advance(31 * DAY);
    await t.settle();
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();
  });
  afterAll(async () => {
    await t.close();
  });

  const ids = async (query: string) => {
    const r = await t.get(`/identities?${query}`);
    expect(r.status).toBe(200);
    return r.body.items.map((i: any) => i.identityId);
  };

  it('q matches a prefix of any word of the name or of the email, case-insensitively; LIKE wildcards are literal', async () => {
    expect(await ids('q=ada')).toEqual([ada]);
    expect(await ids('q=LOVE')).toEqual([ada]);
    expect(await ids('q=hop')).toEqual([grace]);
    expect(await ids('q=g.hop')).toEqual([grace]);
    expect(await ids('q=lace')).toEqual([]);
    expect(await ids('q=%25')).toEqual([]);
    expect(await ids('q=_da')).toEqual([]);
    // Deleted accounts keep no name or email, so a name search cannot find them.
    expect(await ids('q=alan')).toEqual([]);
    expect(await ids('q=a&status=active')).toEqual([ada]);
  });

  it('key finds an identity by its external key string', async () => {
    expect(await ids('key=hr%3AE1002')).toEqual([grace]);
    expect(await ids('key=hr%3AE9999')).toEqual([]);
    expect((await ids('status=deleted'))).toEqual([alan]);
  });

  it('the dashboard counts statuses, buckets joiners/movers/leavers by week, and shows projection lag', async () => {
    const r = await t.get('/audit/dashboard');
    expect(r.status).toBe(200);
    expect(r.body.generatedAt).toBe('2026-02-14T00:00:00.000Z');
    expect(r.body.countsByStatus).toEqual({ pending: 0, active: 2, disabled: 0, deleted: 1 });
    expect(r.body.total).toBe(3);
    expect(r.body.weekly).toHaveLength(12);
    const nonZero = r.body.weekly.filter((w: any) => w.joiners + w.movers + w.leavers > 0);
    // Hires on Mon 2026-01-05; the move and the termination were recorded on Tue 2026-01-13.
    expect(nonZero).toEqual([
      { weekStart: '2026-01-05', joiners: 3, movers: 0, leavers: 0 },
      { weekStart: '2026-01-12', joiners: 0, movers: 1, leavers: 1 },
    ]);
    expect(r.body.weekly[11].weekStart).toBe('2026-02-09');
    expect(r.body.projections.lagEvents).toBe(0);
    expect(r.body.projections.checkpoints.map((c: any) => c.name)).toEqual(expect.arrayContaining(['identities', 'audit-timeline']));
    // Both are at the warning stage: warned 7 days before the 90-day disablement.
    expect(r.body.dueForInactivityDisablement.map((d: any) => [d.employeeId, d.displayName, d.nextAction, d.nextActionAt, d.disableAt]).sort()).toEqual([
      ['E1001', 'Ada Lovelace', 'warn-inactive', '2026-03-29T09:00:00.000Z', '2026-04-05T09:00:00.000Z'],
      ['E1002', 'Grace Hopper', 'warn-inactive', '2026-03-29T09:00:00.000Z', '2026-04-05T09:00:00.000Z'],
    ]);
  });

  it('the weekly counts read the audit timeline through its (type, recorded_at) index, the one index it has', async () => {
    const flow = weeklyFlowQuery(Date.parse('2025-11-24T00:00:00Z'));
    const plan = await t.engine.readDb.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${flow.sql}`, flow.params);
    expect(plan.map((r) => r.detail).join('\n')).toMatch(/USING (COVERING )?INDEX audit_timeline_type /);
    expect(await timelineIndexes(t.engine)).toEqual(['audit_timeline_type']);
  });

  it('deadlines of one identity; a malformed id is a 400 problem', async () => {
    const r = await t.get(`/audit/identities/${ada}/deadlines`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ identityId: ada, items: [{ action: 'warn-inactive', dueAt: '2026-03-29T09:00:00.000Z' }] });
    expect((await t.get(`/audit/identities/${alan}/deadlines`)).body.items).toEqual([]);
    const bad = await t.get('/audit/identities/not%20an%20id/deadlines');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });

  it('serves the page and its modules at /ui with a strict CSP, and 404s anything else', async () => {
    const page = await fetch(`${t.url}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/ui/app.js">');
    const js = await fetch(`${t.url}/ui/app.js`);
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect((await fetch(`${t.url}/ui/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${t.url}/ui/nope.js`)).status).toBe(404);
  });
});

describe('audit:read credentials on the read API and the dashboard', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 401 problem+json without a valid credential, 403 without audit:read, 200 with it', async () => {
    const reader = await t.credential(['audit:read'], 'auditor');
    const writer = await t.credential(['hr:write'], 'hr-system');
    for (const path of ['/identities', '/audit/dashboard', '/roles/x/members', '/identities/abc/history']) {
      const none = await fetch(`${t.url}${path}`);
      expect([path, none.status]).toEqual([path, 401]);
      expect(none.headers.get('content-type')).toContain('application/problem+json');
      expect((await fetch(`${t.url}${path}`, bearer('wrong'))).status).toBe(401);
      const forbidden = await fetch(`${t.url}${path}`, bearer(writer));
      expect([path, forbidden.status, ((await forbidden.json()) as any).requiredScope]).toEqual([path, 403, 'audit:read']);
    }
    expect((await fetch(`${t.url}/identities`, bearer(reader))).status).toBe(200);
    expect((await fetch(`${t.url}/audit/dashboard`, bearer(reader))).status).toBe(200);
    // The page shell carries no data and a navigation cannot send a bearer header; health stays open.
    expect((await fetch(`${t.url}/ui`)).status).toBe(200);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});

/** The audit timeline's own indexes (not the primary key's automatic one). */
const timelineIndexes = async (engine: Engine) =>
  (await engine.readDb.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_timeline' AND sql IS NOT NULL ORDER BY name")).map(
    (r) => r.name,
  );

describe('audit timeline of a database written by an earlier version', () => {
  const dir = tempDirPerTest('idlc-timeline-');
  const open = () =>
    Engine.open({
      config: loadConfig({ DATA_DIR: dir(), BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), LOG_LEVEL: 'silent' }),
      clock: new ManualClock('2026-01-05T09:00:00.000Z'),
    });

  it('loses the (identity_id, position) and (recorded_at) indexes that served no query when the engine opens it', async () => {
    const before = await open();
    await before.readDb.exec(
      'CREATE INDEX audit_timeline_identity ON audit_timeline (identity_id, position); CREATE INDEX audit_timeline_time ON audit_timeline (recorded_at);',
    );
    expect(await timelineIndexes(before)).toEqual(['audit_timeline_identity', 'audit_timeline_time', 'audit_timeline_type']);
    await before.close();
    const after = await open();
    expect(await timelineIndexes(after)).toEqual(['audit_timeline_type']);
    await after.close();
  });
});
