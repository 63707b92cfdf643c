import { identityStream, keyString, idpKey, hrKey } from '@idlc/domain';
import { ConfigError, Engine, loadConfig, loadTrustedIdps } from '@idlc/engine';
import type { StoredEvent } from '@idlc/event-store';
import type { TrustedIdpConfig } from '@idlc/sso-verification';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApp } from '../../apps/api/src/app';
import { startTestApp, TestApp } from '../support/app';
import { serviceEnv } from '../support/services';
import { tamper, TestOidcIdp, TestSamlIdp, toBase64, wrapAssertion, type IdTokenOptions } from '../support/test-idp';
import { tempDirPerTest } from '../support/temp-dir';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

const PROBLEM = 'https://idlc.dev/problems/';

/** Claims of Alice as the OIDC IdP asserts them (all mapped by the IdP config below). */
const ALICE = {
  email: 'alice@example.com',
  given_name: 'Alice',
  family_name: 'Example',
  department: 'Engineering',
  title: 'Engineer',
  employment_type: 'employee',
};
const ALICE_ATTRIBUTES = {
  email: 'alice@example.com',
  givenName: 'Alice',
  familyName: 'Example',
  department: 'Engineering',
  title: 'Engineer',
  employmentType: 'employee',
};
/** config/birthright.yaml for an Engineering employee, plus the IdP's default role. */
const ALICE_ROLES = ['employee-basic', 'github-developer', 'jira-user', 'office-access', 'sso-user'];

let oidc: TestOidcIdp;
let noJit: TestOidcIdp;
let down: TestOidcIdp;
let untrusted: TestOidcIdp;
let saml: TestSamlIdp;
let dir: string;

const mapping = {
  email: 'email',
  given_name: 'givenName',
  family_name: 'familyName',
  department: 'department',
  title: 'title',
  employment_type: 'employmentType',
  employee_number: 'employeeId',
};

function idpsFile(extra: TrustedIdpConfig[] = []): string {
  const idps: TrustedIdpConfig[] = [
    oidc.config({ id: 'test-oidc', allowedEmailDomains: ['example.com'], attributeMapping: mapping, jit: true, defaultRole: 'sso-user' }),
    noJit.config({ id: 'nojit-oidc', attributeMapping: mapping, jit: false }),
    down.config({ id: 'down-oidc', jit: true }),
    saml.config({
      id: 'test-saml',
      allowedEmailDomains: ['example.com'],
      attributeMapping: { email: 'email', givenName: 'givenName', surname: 'familyName', department: 'department' },
      jit: true,
      defaultRole: 'sso-user',
    }),
    ...extra,
  ];
  const file = join(dir, `idps-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(idps, null, 2));
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'idlc-sso-'));
  [oidc, noJit, down, untrusted, saml] = await Promise.all([
    TestOidcIdp.start(),
    TestOidcIdp.start(),
    TestOidcIdp.start(),
    TestOidcIdp.start(),
    TestSamlIdp.create(),
  ]);
  down.jwksFailureStatus = 503;
});

afterAll(async () => {
  await Promise.all([oidc, noJit, down, untrusted].map((i) => i?.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe.each(backends)('POST /sso/login, driven as an IdP login hook would (%s)', (_name, env) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({ ...env, SSO_IDPS_FILE: idpsFile() });
  });
  afterEach(async () => {
    await t.close();
  });

  const token = (opts: IdTokenOptions = {}, idp = oidc) =>
    idp.signIdToken({ alg: 'RS256', ...opts, now: opts.now ?? t.clock.now(), claims: { ...ALICE, ...(opts.claims ?? {}) } });
  const login = (body: unknown, headers: Record<string, string> = {}) => t.post('/sso/login', body, headers);
  /** Everything appended after `from` (a head position). */
  const appendedSince = async (from: number): Promise<StoredEvent[]> => t.engine.store.readAll({ fromPosition: from });
  const head = () => t.engine.store.headPosition();
  const types = (events: StoredEvent[]) => events.map((e) => e.type);

  /** Asserts a problem+json refusal with the exact slug and status, and that nothing was appended. */
  async function expectRefused(body: unknown, status: number, slug: string) {
    const before = await t.eventCount();
    const r = await login(body);
    expect({ status: r.status, type: r.body?.type }).toEqual({ status, type: PROBLEM + slug });
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(await t.eventCount()).toBe(before);
    return r;
  }

  it('a first OIDC login provisions one identity with mapped attributes, the default role and birthright roles, in one append', async () => {
    const r = await login({ idToken: await token() }, { 'x-correlation-id': 'corr-first' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ identityId: expect.any(String), status: 'active', roles: ALICE_ROLES, provisioned: true });
    const id = r.body.identityId;

    const events = await appendedSince(0);
    expect(types(events)).toEqual([
      'ExternalKeyLinked',
      'AccountProvisioned',
      'RoleGranted',
      'RoleGranted',
      'RoleGranted',
      'RoleGranted',
      'RoleGranted',
      'LoginRecorded',
    ]);
    // One atomic append: one stream, consecutive revisions, one commit instant.
    expect(new Set(events.map((e) => e.streamId))).toEqual(new Set([identityStream(id)]));
    expect(events.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(events.map((e) => e.recordedAt.getTime())).size).toBe(1);
    for (const e of events) expect(e.metadata).toMatchObject({ source: 'sso', actor: 'idp:test-oidc', correlationId: 'corr-first' });

    expect(events[0].data).toEqual({ key: idpKey(oidc.issuer, 'user-123') });
    expect(events[1].data).toEqual({ source: 'sso', effectiveAt: '2026-01-05T09:00:00.000Z', attributes: ALICE_ATTRIBUTES });
    expect(events[2].data).toEqual({ role: 'sso-user', source: { kind: 'manual', by: 'jit:test-oidc' } });
    expect(events.slice(3, 7).map((e) => [e.data.role, e.data.source.ruleId]).sort()).toEqual([
      ['employee-basic', 'default'],
      ['github-developer', 'engineering'],
      ['jira-user', 'engineering'],
      ['office-access', 'full-time-benefits'],
    ]);
    expect(events[7].data).toMatchObject({ at: '2026-01-05T09:00:00.000Z', issuer: oidc.issuer, subject: 'user-123', protocol: 'oidc' });

    await t.settle();
    const got = await t.get(`/identities/${id}`);
    expect(got.body).toMatchObject({ status: 'active', attributes: ALICE_ATTRIBUTES, heldRoles: ALICE_ROLES, keys: [keyString(idpKey(oidc.issuer, 'user-123'))] });
    expect(got.body.lastLoginAt).toBe('2026-01-05T09:00:00.000Z');
  });

  it('a second login of the same subject records only LoginRecorded, whatever the email says', async () => {
    const first = await login({ idToken: await token() });
    t.clock.advance(3600_000);
    const from = await head();
    // Email is not a key: the same subject with a new address is the same person.
    const second = await login({ idToken: await token({ claims: { email: 'alice.new@example.com' } }) });
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ identityId: first.body.identityId, status: 'active', roles: ALICE_ROLES, provisioned: false });
    const events = await appendedSince(from);
    expect(types(events)).toEqual(['LoginRecorded', 'AttributesChanged']);
    expect(events[1].data.changes).toEqual({ email: { from: 'alice@example.com', to: 'alice.new@example.com' } });

    // Within LOGIN_RECORD_INTERVAL_SECONDS (default 300) of the last recorded login: answered, nothing appended.
    const from2 = await head();
    t.clock.advance(299_000);
    const third = await login({ idToken: await token({ claims: { email: 'alice.new@example.com' } }) });
    expect(third.body).toEqual(second.body);
    expect(await appendedSince(from2)).toEqual([]);
    // Once the interval has passed, the next login is recorded again.
    t.clock.advance(1_000);
    const fourth = await login({ idToken: await token({ claims: { email: 'alice.new@example.com' } }) });
    expect(fourth.body.identityId).toBe(first.body.identityId);
    expect(types(await appendedSince(from2))).toEqual(['LoginRecorded']);
    // The same subject with another email is still one identity.
    expect(await t.engine.commands.findByKey(keyString(idpKey(oidc.issuer, 'user-123')))).toBe(first.body.identityId);
  });

  it('counts every login by IdP and outcome on /metrics (idlc_sso_logins_total)', async () => {
    expect((await login({ idToken: await token() })).status).toBe(200);
    expect((await login({ idToken: await token() })).status).toBe(200);
    t.clock.advance(300_000);
    expect((await login({ idToken: await token() })).status).toBe(200);
    const spent = await token();
    expect((await login({ idToken: spent })).status).toBe(200);
    expect((await login({ idToken: spent })).status).toBe(401);
    const untrusted = await TestOidcIdp.start();
    try {
      expect((await login({ idToken: await untrusted.signIdToken({ now: t.clock.now() }) })).status).toBe(401);
    } finally {
      await untrusted.stop();
    }
    const page = await t.getText('/metrics');
    const samples = page.text.split('\n').filter((l) => l.startsWith('idlc_sso_logins_total{'));
    expect(samples.sort()).toEqual(
      [
        'idlc_sso_logins_total{idp="test-oidc",outcome="provisioned"} 1',
        'idlc_sso_logins_total{idp="test-oidc",outcome="within_interval"} 2',
        'idlc_sso_logins_total{idp="test-oidc",outcome="recorded"} 1',
        'idlc_sso_logins_total{idp="test-oidc",outcome="replayed"} 1',
        'idlc_sso_logins_total{idp="unknown",outcome="unknown_issuer"} 1',
      ].sort(),
    );
  });

  it('an attribute change at login appends AttributesChanged and recomputes birthright roles (manual ones stay)', async () => {
    const id = (await login({ idToken: await token() })).body.identityId;
    t.clock.advance(86400_000);
    const from = await head();
    const r = await login({ idToken: await token({ claims: { department: 'Finance' } }) });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ identityId: id, status: 'active', roles: ['employee-basic', 'erp-finance', 'office-access', 'sso-user'], provisioned: false });
    const events = await appendedSince(from);
    expect(types(events)).toEqual(['LoginRecorded', 'AttributesChanged', 'RoleRevoked', 'RoleRevoked', 'RoleGranted']);
    expect(events[1].data).toEqual({ changes: { department: { from: 'Engineering', to: 'Finance' } }, effectiveAt: '2026-01-06T09:00:00.000Z', source: 'sso' });
    expect(events.slice(2, 4).map((e) => e.data.role).sort()).toEqual(['github-developer', 'jira-user']);
    expect(events[4].data).toEqual({ role: 'erp-finance', source: { kind: 'birthright', ruleId: 'finance' } });
  });

  it('a first SAML login provisions with mapped attributes; the next one records only the login', async () => {
    const first = await login({ samlResponse: saml.response({ now: t.clock.now() }), relayState: '/app' });
    expect(first.status).toBe(200);
    // No employmentType from this IdP: no office-access; the first department value is taken.
    expect(first.body).toEqual({
      identityId: expect.any(String),
      status: 'active',
      roles: ['employee-basic', 'github-developer', 'jira-user', 'sso-user'],
      provisioned: true,
    });
    const events = await appendedSince(0);
    expect(events[1].data.attributes).toEqual({ email: 'alice@example.com', givenName: 'Alice', familyName: 'Example', department: 'Engineering' });
    expect(events[0].data).toEqual({ key: idpKey(saml.issuer, saml.nameId) });
    expect(events.at(-1)!.data).toMatchObject({ issuer: saml.issuer, subject: saml.nameId, protocol: 'saml' });
    expect(events[0].metadata).toMatchObject({ source: 'sso', actor: 'idp:test-saml' });

    t.clock.advance(10 * 60_000);
    const from = await head();
    const second = await login({ samlResponse: saml.response({ now: t.clock.now() }) });
    expect(second.body).toMatchObject({ identityId: first.body.identityId, provisioned: false });
    expect(types(await appendedSince(from))).toEqual(['LoginRecorded']);
  });

  it('accepts a token signed with a rotated key (new kid, RS256 then ES256) after refetching the JWKS once', async () => {
    const id = (await login({ idToken: await token() })).body.identityId;
    const fetches = oidc.jwksRequests;
    const kid = await oidc.addKey('ES256');
    // Past the verifier's refetch cooldown (30 s on the engine clock).
    t.clock.advance(31_000);
    const r = await login({ idToken: await token({ kid, alg: 'ES256' }) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ identityId: id, provisioned: false });
    expect(oidc.jwksRequests).toBe(fetches + 1);
    // A later token with the same kid needs no fetch.
    expect((await login({ idToken: await token({ kid, alg: 'ES256' }) })).status).toBe(200);
    expect(oidc.jwksRequests).toBe(fetches + 1);
    oidc.unpublishKey(kid);
  });

  it('refuses bad OIDC credentials with a stable type and appends nothing, even for a known subject', async () => {
    await login({ idToken: await token() });
    const valid = await token();
    const [h, , s] = valid.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(valid.split('.')[1], 'base64url').toString()), sub: 'admin' })).toString('base64url');
    await expectRefused({ idToken: `${h}.${forgedPayload}.${s}` }, 401, 'invalid_signature');
    await expectRefused({ idToken: oidc.unsignedIdToken({ now: t.clock.now(), claims: ALICE }) }, 401, 'invalid_signature');
    await expectRefused({ idToken: await oidc.hs256WithPublicKey({ now: t.clock.now(), claims: ALICE }) }, 401, 'invalid_signature');
    await expectRefused({ idToken: await token({ now: new Date(t.clock.now().getTime() - 3600_000) }) }, 401, 'expired');
    await expectRefused({ idToken: await token({ claims: { aud: 'someone-elses-client' } }) }, 401, 'wrong_audience');
    await expectRefused({ idToken: await untrusted.signIdToken({ now: t.clock.now() }) }, 401, 'unknown_issuer');
    await expectRefused({ idToken: await token({ claims: { email: 'alice@evil.example' } }) }, 403, 'domain_not_allowed');
    await expectRefused({ idToken: 'not-a-jwt' }, 400, 'invalid_credential');
  });

  it('refuses a replayed credential: the first use counts, the second appends nothing', async () => {
    const idToken = await token();
    expect((await login({ idToken })).status).toBe(200);
    const r = await expectRefused({ idToken }, 401, 'replayed');
    expect(r.body.detail).toContain('already used');
    const samlResponse = saml.response({ now: t.clock.now() });
    expect((await login({ samlResponse })).status).toBe(200);
    await expectRefused({ samlResponse }, 401, 'replayed');
  });

  it('refuses tampered, wrapped, wrongly signed, expired and mis-addressed SAML responses', async () => {
    await login({ samlResponse: saml.response({ now: t.clock.now() }) });
    const now = t.clock.now();
    const signed = saml.responseXml({ now });
    await expectRefused({ samlResponse: toBase64(tamper(signed, `>${saml.nameId}<`, '>admin<')) }, 401, 'invalid_signature');
    await expectRefused({ samlResponse: toBase64(tamper(signed, '>Engineering<', '>Finance<')) }, 401, 'invalid_signature');
    for (const mode of ['sibling-before', 'sibling-after', 'advice', 'copied-signature'] as const) {
      const wrapped = wrapAssertion(saml.responseXml({ now }), 'admin', mode);
      expect(wrapped).toContain('>admin<');
      await expectRefused({ samlResponse: toBase64(wrapped) }, 401, 'invalid_signature');
    }
    const stranger = await TestSamlIdp.create({ issuer: saml.issuer });
    await expectRefused({ samlResponse: stranger.response({ now }) }, 401, 'invalid_signature');
    await expectRefused({ samlResponse: saml.response({ now, sign: 'none' }) }, 401, 'invalid_signature');
    await expectRefused({ samlResponse: saml.response({ now: new Date(now.getTime() - 3600_000) }) }, 401, 'expired');
    await expectRefused({ samlResponse: saml.response({ now, audience: 'https://other.test/sp' }) }, 401, 'wrong_audience');
    await expectRefused({ samlResponse: saml.response({ now, issuer: 'https://unknown.test/idp' }) }, 401, 'unknown_issuer');
    await expectRefused({ samlResponse: saml.response({ now, attributes: { email: 'bob@evil.example' } }) }, 403, 'domain_not_allowed');
    await expectRefused({ samlResponse: Buffer.from('<nope/>').toString('base64') }, 400, 'invalid_credential');
  });

  it('refuses an unknown subject with 403 jit_disabled when the IdP does not provision just in time', async () => {
    await expectRefused({ idToken: await token({}, noJit) }, 403, 'jit_disabled');
    expect(await t.eventCount()).toBe(0);
  });

  it('answers 503 idp_unavailable when the IdP keys cannot be fetched, appending nothing', async () => {
    // The app logs every 5xx; this one is expected.
    const log = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const r = await expectRefused({ idToken: await down.signIdToken({ now: t.clock.now() }) }, 503, 'idp_unavailable');
      expect(r.body.detail).toContain('down-oidc');
    } finally {
      log.mockRestore();
    }
  });

  it('refuses malformed request bodies with 400 naming the field, appending nothing', async () => {
    const idToken = await token();
    const cases: [unknown, string][] = [
      [{}, 'idToken'],
      [{ idToken, samlResponse: 'PHg+' }, 'samlResponse'],
      [{ idToken: 42 }, 'idToken'],
      [{ idToken: '' }, 'idToken'],
      [{ idToken: 'x'.repeat(64 * 1024 + 1) }, 'idToken'],
      [{ idToken, relayState: '/x' }, 'relayState'],
      [{ samlResponse: 'PHg+', relayState: 'r'.repeat(1025) }, 'relayState'],
      [{ idToken, extra: true }, 'extra'],
      [[idToken], 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await expectRefused(body, 400, 'validation_failed');
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    // The token was never used: it still logs in.
    expect((await login({ idToken })).status).toBe(200);
  });

  it('two parallel first logins of the same new user yield exactly one identity', async () => {
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => token()));
    // A slow key lookup (as on a busy database) so every request sees "unknown" before any appends:
    // without it one process may finish each request before the next is read, and nothing races.
    const lookup = t.engine.commands.findByKey.bind(t.engine.commands);
    const seen: (string | null)[] = [];
    const slow = jest.spyOn(t.engine.commands, 'findByKey').mockImplementation(async (key) => {
      const owner = await lookup(key);
      seen.push(owner);
      await new Promise((r) => setTimeout(r, 50));
      return owner;
    });
    const results = await Promise.all(tokens.map((idToken) => login({ idToken })));
    slow.mockRestore();
    // Every request looked the key up and found nobody: the key claim decided the race.
    expect(seen).toEqual([null, null, null, null, null]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const ids = new Set(results.map((r) => r.body.identityId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.body.provisioned)).toHaveLength(1);
    const all = await appendedSince(0);
    expect(types(all).filter((x) => x === 'AccountProvisioned')).toHaveLength(1);
    // The four that lost the race logged in within the record interval of the winner's login.
    expect(types(all).filter((x) => x === 'LoginRecorded')).toHaveLength(1);
    expect(new Set(all.map((e) => e.streamId)).size).toBe(1);
    await t.settle();
    expect((await t.get('/identities?limit=10')).body.items).toHaveLength(1);
  });

  it('links the first login to the HR-created identity by employee id instead of creating a duplicate', async () => {
    const hire = await t.hr({
      eventId: 'h-1',
      type: 'hire',
      employeeId: 'E1001',
      effectiveDate: '2026-01-05',
      attributes: { ...ALICE_ATTRIBUTES, location: 'London' },
    });
    const hrId = hire.body.results[0].identityId;
    const from = await head();
    const r = await login({ idToken: await token({ claims: { employee_number: 'E1001' } }) }, { 'x-correlation-id': 'corr-link' });
    expect(r.status).toBe(200);
    // Linked, not provisioned: HR's birthright roles, no JIT default role.
    expect(r.body).toEqual({ identityId: hrId, status: 'active', roles: ['employee-basic', 'github-developer', 'jira-user', 'office-access'], provisioned: false });
    const events = await appendedSince(from);
    expect(types(events)).toEqual(['ExternalKeyLinked', 'LoginRecorded']);
    expect(events[0].data).toEqual({ key: idpKey(oidc.issuer, 'user-123') });
    expect(events.every((e) => e.streamId === identityStream(hrId) && e.metadata.correlationId === 'corr-link')).toBe(true);
    expect(await t.engine.commands.findByKey(keyString(idpKey(oidc.issuer, 'user-123')))).toBe(hrId);

    const from2 = await head();
    const again = await login({ idToken: await token({ claims: { employee_number: 'E1001', title: 'Senior Engineer' } }) });
    expect(again.body).toMatchObject({ identityId: hrId, provisioned: false });
    // A login within the record interval still records what it changes.
    expect(types(await appendedSince(from2))).toEqual(['AttributesChanged']);
    await t.settle();
    const list = await t.get('/identities?limit=10');
    expect(list.body.items.map((i: { identityId: string }) => i.identityId)).toEqual([hrId]);
    expect((await t.get(`/identities/${hrId}`)).body.keys.sort()).toEqual([keyString(hrKey('E1001')), keyString(idpKey(oidc.issuer, 'user-123'))].sort());
  });

  it('refuses a terminated identity with 403 account_disabled and records only the refused attempt', async () => {
    await t.hr({ eventId: 'h-2', type: 'hire', employeeId: 'E2001', effectiveDate: '2026-01-05', attributes: ALICE_ATTRIBUTES });
    const id = (await login({ idToken: await token({ claims: { employee_number: 'E2001' } }) })).body.identityId;
    const term = await t.hr({ eventId: 't-2', type: 'terminate', employeeId: 'E2001', effectiveDate: '2026-01-05', reason: 'resignation' });
    expect(term.body.results[0].status).toBe('applied');
    t.clock.advance(60_000);

    const from = await head();
    const r = await login({ idToken: await token({ claims: { employee_number: 'E2001' } }) }, { 'x-correlation-id': 'corr-refused' });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ type: PROBLEM + 'account_disabled', status: 403, reason: 'terminated' });
    const events = await appendedSince(from);
    expect(types(events)).toEqual(['LoginRefused']);
    expect(events[0].streamId).toBe(identityStream(id));
    expect(events[0].data).toEqual({ at: '2026-01-05T09:01:00.000Z', issuer: oidc.issuer, subject: 'user-123', protocol: 'oidc', reason: 'account disabled (terminated)' });
    expect(events[0].metadata).toMatchObject({ source: 'sso', actor: 'idp:test-oidc', correlationId: 'corr-refused' });
    await t.settle();
    expect((await t.get(`/identities/${id}`)).body).toMatchObject({ status: 'disabled', heldRoles: [] });
  });

  it('a first login matching a terminated HR identity is refused and recorded there, without linking the key', async () => {
    await t.hr({ eventId: 'h-3', type: 'hire', employeeId: 'E3001', effectiveDate: '2026-01-01', attributes: ALICE_ATTRIBUTES });
    const hrId = (await t.hr({ eventId: 't-3', type: 'terminate', employeeId: 'E3001', effectiveDate: '2026-01-04' })).body.results[0].identityId;
    const from = await head();
    const r = await login({ idToken: await token({ claims: { employee_number: 'E3001' } }) });
    expect(r.status).toBe(403);
    expect(r.body.type).toBe(PROBLEM + 'account_disabled');
    const events = await appendedSince(from);
    expect(types(events)).toEqual(['LoginRefused']);
    expect(events[0].streamId).toBe(identityStream(hrId));
    expect(await t.engine.commands.findByKey(keyString(idpKey(oidc.issuer, 'user-123')))).toBeNull();
  });

  it('after many logins a full replay equals the cached aggregate, and the hot path neither replays nor looks keys up', async () => {
    const id = (await login({ idToken: await token() })).body.identityId;
    await login({ idToken: await token() });
    const replays = t.engine.repository.fullReplays;
    const findByKey = jest.spyOn(t.engine.commands, 'findByKey');
    const readStream = jest.spyOn(t.engine.store, 'readStream');
    const streamRevision = jest.spyOn(t.engine.store, 'streamRevision');
    try {
      for (let i = 0; i < 40; i++) {
        t.clock.advance(10 * 60_000);
        const title = i % 10 === 9 ? `Engineer ${i}` : undefined;
        const r = await login({ idToken: await token({ claims: title ? { title } : {} }) });
        expect(r.status).toBe(200);
      }
      expect(findByKey).not.toHaveBeenCalled();
      expect(readStream).not.toHaveBeenCalled();
      // Is the cached aggregate still the stream's head? On SQLite, while no other connection has
      // committed, data_version says so without a read; elsewhere one indexed read per login.
      if (t.engine.config.eventStore === 'sqlite') expect(streamRevision).not.toHaveBeenCalled();
      else expect(streamRevision).toHaveBeenCalledTimes(40);
    } finally {
      findByKey.mockRestore();
      readStream.mockRestore();
      streamRevision.mockRestore();
    }
    expect(t.engine.repository.fullReplays).toBe(replays);
    const cached = await t.engine.repository.load(id);
    // 8 provisioning events, 40 LoginRecorded (the second login came within the record interval),
    // 7 AttributesChanged (to and back: logins 9, 10, 19, 20, 29, 30, 39).
    expect(cached.revision).toBe(8 + 40 + 7 - 1);
    expect(await t.engine.repository.replay(id)).toEqual(cached);
    expect(cached.attributes.title).toBe('Engineer 39');
  });
});

describe('the replay cache under concurrent logins', () => {
  it('claims sent in the same moment share a commit: of one token posted 20 times at once exactly one login counts', async () => {
    const t = await startTestApp({ SSO_IDPS_FILE: idpsFile() });
    try {
      const idToken = await oidc.signIdToken({ alg: 'RS256', now: t.clock.now(), claims: ALICE });
      const others = await Promise.all([1, 2, 3].map((i) => oidc.signIdToken({ alg: 'RS256', now: t.clock.now(), claims: { ...ALICE, sub: `user-${i}` } })));
      const all = await Promise.all([...Array.from({ length: 20 }, () => t.post('/sso/login', { idToken })), ...others.map((o) => t.post('/sso/login', { idToken: o }))]);
      const replayed = all.slice(0, 20);
      expect(replayed.filter((r) => r.status === 200)).toHaveLength(1);
      expect(replayed.filter((r) => r.status === 401 && r.body.type === PROBLEM + 'replayed')).toHaveLength(19);
      // Other tokens in the same batches are unaffected.
      expect(all.slice(20).map((r) => r.status)).toEqual([200, 200, 200]);
      expect(Number((await t.engine.readDb.get<{ n: number }>('SELECT count(*) AS n FROM sso_spent_credentials'))!.n)).toBe(4);
    } finally {
      await t.close();
    }
  });
});

describe('the replay cache lives in the database', () => {
  const sharedDir = tempDirPerTest('idlc-sso-db-');

  it('catches a replay across two engines on one database and across a restart; expired rows are purged', async () => {
    const env = { SSO_IDPS_FILE: idpsFile(), SQLITE_FILE: join(sharedDir(), 'idlc.db') };
    const a = await startTestApp(env);
    const b = await startTestApp(env);
    let c: TestApp | undefined;
    try {
      const idToken = await oidc.signIdToken({ alg: 'RS256', now: a.clock.now(), claims: ALICE });
      expect((await a.post('/sso/login', { idToken })).status).toBe(200);
      const other = await b.post('/sso/login', { idToken });
      expect({ status: other.status, type: other.body.type }).toEqual({ status: 401, type: PROBLEM + 'replayed' });
      await a.close();
      c = await startTestApp(env);
      const again = await c.post('/sso/login', { idToken });
      expect({ status: again.status, type: again.body.type }).toEqual({ status: 401, type: PROBLEM + 'replayed' });
      expect(Number((await c.engine.readDb.get<{ n: number }>('SELECT count(*) AS n FROM sso_spent_credentials'))!.n)).toBe(1);

      // Once the token's window (exp + 60 s skew) has passed, the row goes with the next purge.
      c.clock.advance(10 * 60_000);
      const fresh = await oidc.signIdToken({ alg: 'RS256', now: c.clock.now(), claims: ALICE });
      expect((await c.post('/sso/login', { idToken: fresh })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      const rows = await c.engine.readDb.all<{ credential_id: string }>('SELECT credential_id FROM sso_spent_credentials');
      expect(rows).toHaveLength(1);
      expect(rows[0].credential_id).not.toBe(JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()).jti);
    } finally {
      await b.close();
      await c?.close();
    }
  });
});

describe.each(backends)('a known login decides on the store\'s current state, not a stale cache (%s)', (_name, backendEnv) => {
  const sharedDir = tempDirPerTest('idlc-sso-two-');
  /** Two processes over one database: the API answering logins, and another (a worker, a second API replica). */
  const twoProcesses = async (): Promise<[TestApp, TestApp]> => {
    const shared: Record<string, string> =
      backendEnv.EVENT_STORE === 'postgres' ? { ...backendEnv, DATABASE_SCHEMA: `t_two_${Math.random().toString(36).slice(2, 10)}` } : { SQLITE_FILE: join(sharedDir(), 'idlc.db') };
    return [await startTestApp({ ...shared, SSO_IDPS_FILE: idpsFile() }), await startTestApp({ ...shared, SSO_IDPS_FILE: idpsFile() }, undefined, { ownsSchema: false })];
  };
  /** The other process first: dropping the shared schema while it still runs would race its queries. */
  const closeBoth = async (api: TestApp, other: TestApp) => {
    await other.close();
    await api.close();
  };

  it('an account terminated through another process is refused at the next login, even within the record interval', async () => {
    // The other process (a worker consuming the HR topic) applies the termination.
    const [api, other] = await twoProcesses();
    try {
      const token = () => oidc.signIdToken({ alg: 'RS256', now: api.clock.now(), claims: { ...ALICE, employee_number: 'E9001' } });
      await other.hr({ eventId: 'h-9', type: 'hire', employeeId: 'E9001', effectiveDate: '2026-01-05', attributes: ALICE_ATTRIBUTES });
      const first = await api.post('/sso/login', { idToken: await token() });
      expect(first.status).toBe(200);
      api.clock.advance(60_000);
      // Within LOGIN_RECORD_INTERVAL_SECONDS: answered from the cached aggregate, nothing appended.
      const before = await api.eventCount();
      expect((await api.post('/sso/login', { idToken: await token() })).status).toBe(200);
      expect(await api.eventCount()).toBe(before);

      const term = await other.hr({ eventId: 't-9', type: 'terminate', employeeId: 'E9001', effectiveDate: '2026-01-05', reason: 'resignation' });
      expect(term.body.results[0].status).toBe('applied');
      api.clock.advance(60_000);
      const refused = await api.post('/sso/login', { idToken: await token() });
      expect({ status: refused.status, type: refused.body.type, reason: refused.body.reason }).toEqual({ status: 403, type: PROBLEM + 'account_disabled', reason: 'terminated' });
      // The cached aggregate caught up by reading the tail, not by replaying the stream.
      expect((await api.engine.repository.load(first.body.identityId)).account).toBe('disabled');
    } finally {
      await closeBoth(api, other);
    }
  });

  it('a key unlinked through another process: the next login, even within the record interval, is not recorded on its former holder', async () => {
    const [api, other] = await twoProcesses();
    try {
      const token = () => oidc.signIdToken({ alg: 'RS256', now: api.clock.now(), claims: ALICE });
      const first = await api.post('/sso/login', { idToken: await token() });
      expect(first.body).toMatchObject({ provisioned: true });
      const former = first.body.identityId;
      api.clock.advance(60_000);
      expect((await api.post('/sso/login', { idToken: await token() })).body).toMatchObject({ identityId: former, provisioned: false });

      // An operator's tool in another process takes the IdP key off the identity.
      const unlinked = await other.engine.commands.execute(former, [{ kind: 'UnlinkKey', key: idpKey(oidc.issuer, 'user-123') }], {
        metadata: { source: 'admin', actor: 'operator' },
      });
      expect(unlinked.events.map((e) => e.type)).toEqual(['ExternalKeyUnlinked']);
      const formerRevision = unlinked.state.revision;

      api.clock.advance(60_000);
      const next = await api.post('/sso/login', { idToken: await token() });
      expect(next.status).toBe(200);
      // The key is free: this login provisions just in time, as a first login does.
      expect(next.body).toMatchObject({ provisioned: true });
      expect(next.body.identityId).not.toBe(former);
      expect(await api.engine.store.streamRevision(identityStream(former))).toBe(formerRevision);
      expect(await api.engine.commands.findByKey(keyString(idpKey(oidc.issuer, 'user-123')))).toBe(next.body.identityId);
    } finally {
      await closeBoth(api, other);
    }
  });
});

describe('SSO configuration', () => {
  it('config/idps.example.json is a valid IdP file', () => {
    expect(loadTrustedIdps(resolve(__dirname, '../../config/idps.example.json')).map((i) => [i.id, i.kind])).toEqual([
      ['okta', 'oidc'],
      ['adfs', 'saml'],
    ]);
  });

  it('a bad SSO_IDPS_FILE stops the app from starting, naming the file, the IdP and the field', async () => {
    const bad = join(dir, 'bad-idps.json');
    writeFileSync(bad, JSON.stringify([{ id: 'corp', kind: 'oidc', issuer: 'https://corp.example', jwksUri: 'https://corp.example/jwks' }]));
    const appDir = mkdtempSync(join(tmpdir(), 'idlc-sso-bad-'));
    const engine = await Engine.open({
      config: loadConfig({ DATA_DIR: appDir, LOG_LEVEL: 'silent', BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), SSO_IDPS_FILE: bad }),
    });
    try {
      const failure = await createApp(engine, { logger: false }).then(
        () => null,
        (e) => e,
      );
      expect(failure).toBeInstanceOf(ConfigError);
      expect(failure.message).toContain(`SSO_IDPS_FILE=${JSON.stringify(bad)}: IdP config "corp" (index 0): field "audience" is required for OIDC`);
    } finally {
      await engine.close();
      rmSync(appDir, { recursive: true, force: true });
    }
    expect(() => loadTrustedIdps(join(dir, 'missing.json'))).toThrow('cannot be read (ENOENT)');
    writeFileSync(bad, '[{');
    expect(() => loadTrustedIdps(bad)).toThrow('is not valid JSON');
  });

  it('SSO_MATCH_ATTRIBUTE defaults to employeeId and may never be email', () => {
    const base = { DATA_DIR: dir };
    expect(loadConfig(base).ssoMatchAttribute).toBe('employeeId');
    expect(loadConfig({ ...base, SSO_MATCH_ATTRIBUTE: 'workerId' }).ssoMatchAttribute).toBe('workerId');
    expect(() => loadConfig({ ...base, SSO_MATCH_ATTRIBUTE: 'email' })).toThrow('SSO_MATCH_ATTRIBUTE="email"');
    expect(loadConfig({ ...base, SSO_IDPS_FILE: 'config/idps.example.json' }).ssoIdpsFile).toBe(resolve('config/idps.example.json'));
  });
});
