import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestApp, TestApp } from '../support/app';

// Used only inside page.evaluate / waitForFunction callbacks, which run in the browser (the project has no DOM lib).
declare const document: any;
declare const sessionStorage: any;

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../test-artifacts/ui');
const DAY = 86400_000;

/** playwright-core and Debian's chromium, or a printed skip; with REQUIRE_SERVICES=1 their absence fails the run. */
function loadPlaywright(): any {
  const missing: string[] = [];
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install -y chromium)`);
  let pw: any;
  try {
    pw = require('playwright-core');
  } catch {
    missing.push('playwright-core (npm devDependency)');
  }
  if (!missing.length) return pw;
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`the browser suite is required (REQUIRE_SERVICES=1) but missing: ${missing.join(', ')}`);
  process.stdout.write(`[skip] /ui browser suite skipped: missing ${missing.join(', ')}\n`);
  return undefined;
}

const pw = loadPlaywright();
const describeIf = pw ? describe : describe.skip;

const hire = (eventId: string, employeeId: string, attrs: Record<string, unknown>) => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London', ...attrs },
});

describeIf('/ui in headless Chromium against a server seeded through the HTTP API', () => {
  let t: TestApp;
  let browser: any;
  let profile: string;
  let ada: string;
  /** An API credential holding only audit:read, as an auditor would be given. */
  let TOKEN: string;
  let alan: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    t = await startTestApp();
    TOKEN = await t.credential(['audit:read'], 'auditor');
    ada = (await t.hr(hire('h-1', 'E1001', { givenName: 'Ada', familyName: 'Lovelace', displayName: 'Ada Lovelace', email: 'ada@example.com' }))).body.results[0].identityId;
    await t.hr(hire('h-2', 'E1002', { givenName: 'Grace', familyName: 'Hopper', displayName: 'Grace Hopper', email: 'grace@example.com', department: 'Sales' }));
    alan = (await t.hr(hire('h-3', 'E1003', { givenName: 'Alan', familyName: 'Turing', displayName: 'Alan Turing', email: 'alan@example.com' }))).body.results[0].identityId;
    t.clock.advance(30 * DAY);
    const move = await t.hr({ eventId: 'c-1', type: 'change', employeeId: 'E1001', effectiveDate: '2026-02-04', attributes: { department: 'Finance', title: 'Analyst' } });
    expect(move.body.results[0].status).toBe('applied');
    // Alan leaves today (disabled at once) and, after the retention period, his account is deleted by the saga.
    await t.hr({ eventId: 't-3', type: 'terminate', employeeId: 'E1003', effectiveDate: '2026-02-04', reason: 'resigned' });
    await t.settle();
    // The read API needs a credential: the page has to ask for one.
    expect((await fetch(`${t.url}/identities/${alan}`)).status).toBe(401);
    t.clock.advance(31 * DAY);
    await t.settle();
    expect(await t.engine.scheduler.runDue()).toBe(1);
    await t.settle();

    profile = mkdtempSync(join(tmpdir(), 'idlc-chromium-'));
    // A fresh, empty profile for every run (Playwright takes it as userDataDir, not as an argument).
    browser = await pw.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const newPage = async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    // 401s are expected until the token is entered; anything else failing is a bug of the page.
    page.on('response', (r: any) => r.status() >= 400 && r.status() !== 401 && errors.push(`${r.status()} ${r.url()}`));
    return { page, errors };
  };
  /** Opens /ui, enters the audit token when the page asks, and waits for the dashboard. */
  const signIn = async (page: any) => {
    await page.goto(`${t.url}/ui`);
    await page.locator('#token-dialog[open]').waitFor();
    await page.fill('#token-input', TOKEN);
    await page.click('#token-submit');
    await page.locator('#status-counts').waitFor();
  };
  const roles = (page: any, list: string) => page.locator(`#${list} li`).evaluateAll((els: any[]) => els.map((e) => e.dataset.role));

  it('asks for the token once, searches, opens the identity, and the slider before the move shows the old roles', async () => {
    const { page, errors } = await newPage();
    await page.goto(`${t.url}/ui`);
    // The dashboard's data call answered 401: the page asks for the audit:read token.
    await page.locator('#token-dialog[open]').waitFor();
    await page.fill('#token-input', 'wrong-token');
    await page.click('#token-submit');
    await page.locator('#token-error:not([hidden])').waitFor();
    await page.fill('#token-input', TOKEN);
    await page.click('#token-submit');
    await page.locator('#status-counts').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('idlc.auditToken'))).toBe(TOKEN);
    await page.click('a[data-nav="search"]');

    await page.fill('#search-q', 'lov');
    await page.click('#search-submit');
    await page.locator('#search-results tr.result').first().waitFor();
    expect(await page.locator('#search-results tr.result').evaluateAll((rs: any[]) => rs.map((r) => r.dataset.identityId))).toEqual([ada]);
    expect(await page.textContent('#search-results tr.result')).toBe('Ada LovelaceE1001ada@example.comFinanceactiveemployee-basic, erp-finance, office-access');
    expect(await page.textContent('#search-results')).not.toContain('null');
    await page.screenshot({ path: join(ARTIFACTS, '1-search.png'), fullPage: true });
    // By external key, then the name search again (the form keeps what was typed in the URL).
    await page.fill('#search-q', '');
    await page.fill('#search-key', 'hr:E1002');
    await page.click('#search-submit');
    await page.waitForFunction(() => document.querySelector('#search-results a.open-identity')?.textContent === 'Grace Hopper');
    await page.fill('#search-key', '');
    await page.fill('#search-q', 'lov');
    await page.click('#search-submit');
    await page.waitForFunction(() => document.querySelector('#search-results a.open-identity')?.textContent === 'Ada Lovelace');

    await page.click('#search-results a.open-identity');
    await page.locator('#asof-state[data-at] #asof-roles').waitFor();
    expect(await page.textContent('#identity-name')).toContain('Ada Lovelace');
    expect(await roles(page, 'current-roles')).toEqual(['employee-basic', 'erp-finance', 'office-access']);
    expect(await roles(page, 'asof-roles')).toEqual(['employee-basic', 'erp-finance', 'office-access']);
    expect(await page.textContent('#current-roles li[data-role="erp-finance"] .source')).toBe('rule finance');
    // The move with its before/after, and revocations with their rule.
    const moved = page.locator('#timeline li[data-type="AttributesChanged"]');
    expect(await moved.locator('.title').textContent()).toBe('Moved');
    expect(await moved.locator('tr[data-attr="department"] .before').textContent()).toBe('Engineering');
    expect(await moved.locator('tr[data-attr="department"] .after').textContent()).toBe('Finance');
    expect(await page.locator('#timeline li[data-type="RoleRevoked"] .sub').allTextContents()).toEqual([
      'granted by rule engineering; reason: recomputed',
      'granted by rule engineering; reason: recomputed',
    ]);
    expect(await page.locator('#deadlines li').evaluateAll((ls: any[]) => ls.map((l) => [l.dataset.action, l.textContent]))).toEqual([
      // 90 days without a login since provisioning on 2026-01-05, warned 7 days before.
      ['warn-inactive', 'warn-inactive due 2026-03-29 09:00:00 UTC'],
    ]);
    await page.screenshot({ path: join(ARTIFACTS, '2-identity-now.png'), fullPage: true });

    // One day after the hire, a month before the department change.
    const beforeMove = Date.parse('2026-01-06T09:00:00Z');
    await page.locator('#asof-slider').fill(String(beforeMove));
    await page.waitForFunction(() => document.querySelector('#asof-state')?.getAttribute('data-at') === '2026-01-06T09:00:00.000Z' && !document.querySelector('#asof-state[aria-busy]'));
    expect(await page.textContent('#asof-label')).toBe('2026-01-06 09:00:00 UTC');
    expect(await roles(page, 'asof-roles')).toEqual(['employee-basic', 'github-developer', 'jira-user', 'office-access']);
    expect(await page.textContent('#asof-roles li[data-role="github-developer"] .source')).toBe('rule engineering');
    expect(await page.textContent('#asof-attributes tr[data-attr="department"] td')).toBe('Engineering');
    // Later events are dimmed on the timeline.
    expect(await page.locator('#timeline li.later[data-type="AttributesChanged"]').count()).toBe(1);
    await page.locator('#asof-state').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, '3-identity-before-move.png'), fullPage: true });

    // Before the hire the identity did not exist.
    await page.locator('#asof-slider').fill(String(Date.parse('2026-01-05T08:00:00Z')));
    await page.locator('#asof-none').waitFor();
    // The date picker reaches any instant: just after the move, the new roles again.
    await page.locator('#asof-picker').fill('2026-02-04T09:30');
    await page.waitForFunction(() => document.querySelector('#asof-state')?.getAttribute('data-at') === '2026-02-04T09:30:00.000Z' && !document.querySelector('#asof-state[aria-busy]'));
    expect(await roles(page, 'asof-roles')).toEqual(['employee-basic', 'erp-finance', 'office-access']);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a deleted identity with an erased marker and none of its personal data', async () => {
    const { page, errors } = await newPage();
    await signIn(page);
    await page.goto(`${t.url}/ui#/identity/${alan}`);
    await page.locator('#erased-marker').waitFor();
    await page.locator('#asof-state[data-at]').waitFor();
    expect(await page.textContent('#identity-name')).toContain('Deleted identity');
    const body = await page.textContent('body');
    for (const personal of ['Alan', 'Turing', 'alan@example.com']) expect([personal, body.includes(personal)]).toEqual([personal, false]);
    expect(await page.textContent('#current-attributes tr[data-attr="email"] td')).toBe('[erased]');
    expect(await page.locator('#timeline li[data-type="AccountDeleted"] .sub').textContent()).toBe('reason: retention (saga)');
    await page.screenshot({ path: join(ARTIFACTS, '4-identity-deleted.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the dashboard shows counts by status, the weekly chart, inactivity disablements and projection lag', async () => {
    const { page, errors } = await newPage();
    await signIn(page);
    const counts = await page.locator('#status-counts a').evaluateAll((as: any[]) => as.map((a) => [a.dataset.status, a.querySelector('.n').textContent]));
    expect(counts).toEqual([
      ['pending', '0'],
      ['active', '2'],
      ['disabled', '0'],
      ['deleted', '1'],
    ]);
    const bars = await page
      .locator('#flow-chart g[data-week] rect')
      .evaluateAll((rs: any[]) => rs.filter((r) => r.dataset.value !== '0').map((r) => [r.parentNode.dataset.week, r.dataset.series, r.dataset.value]));
    expect(bars).toEqual([
      ['2026-01-05', 'joiners', '3'],
      ['2026-02-02', 'movers', '1'],
      ['2026-02-02', 'leavers', '1'],
    ]);
    expect(await page.locator('#due-inactive tr').count()).toBe(3);
    expect(await page.textContent('#projection-lag')).toBe('0 events behind (bound 10000)');
    await page.screenshot({ path: join(ARTIFACTS, '0-dashboard.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  // Last: it erases Alan, whom the tests above show as deleted.
  it('an erased identity shows the values the server answers: [erased] markers, with the erasure in the timeline', async () => {
    expect((await t.post(`/identities/${alan}/erase`, { reason: 'GDPR request' })).status).toBe(200);
    await t.settle();
    const { page, errors } = await newPage();
    await signIn(page);
    await page.goto(`${t.url}/ui#/identity/${alan}`);
    await page.locator('#erased-marker').waitFor();
    await page.locator('#asof-state[data-at]').waitFor();
    expect(await page.textContent('#identity-name')).toContain('Erased identity');
    expect(await page.textContent('#erased-marker')).toMatch(/^Personal data erased on .+ \(right to be forgotten\): every personal value reads \[erased\]\.$/);
    const body = await page.textContent('body');
    for (const personal of ['Alan', 'Turing', 'alan@example.com']) expect([personal, body.includes(personal)]).toEqual([personal, false]);
    // Straight from the server: the hire in the timeline shows the markers beside the non-personal values.
    const hired = await page.locator('#timeline li[data-type="IdentityHired"] dl.kvs').evaluate((dl: any) =>
      Object.fromEntries([...dl.querySelectorAll('dt')].map((dt: any) => [dt.textContent, dt.nextElementSibling.textContent])),
    );
    expect(hired).toMatchObject({ givenName: '[erased]', familyName: '[erased]', email: '[erased]', department: 'Engineering', location: 'London' });
    // Deleted before it was erased: the read model had already dropped the personal attributes.
    expect(await page.locator('#current-attributes tr[data-attr="email"]').count()).toBe(0);
    expect(await page.textContent('#current-attributes tr[data-attr="department"] td')).toBe('Engineering');
    expect(await page.locator('#timeline li[data-type="IdentityErased"] .sub').textContent()).toMatch(/^by credential:[0-9a-f]{16}; reason: GDPR request$/);
    await page.screenshot({ path: join(ARTIFACTS, '5-identity-erased.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
