import { identityStream } from '@idlc/domain';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';
import { runCli } from '../support/cli';

const ROOT = resolve(__dirname, '../..');
const SCIM_STATIC = 'okta-static-scim-token-0123456789';
const TOKEN_SHAPE = /^idlc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;
/** The secret part (base64url, so it may itself contain `_`): everything after `idlc_<16 hex>_`. */
const secretOf = (token: string) => token.slice('idlc_'.length + 16 + 1);

const cli = (args: string[], dir: string) => runCli(args, { DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: resolve(ROOT, 'config/birthright.yaml') });

const hire = (eventId: string, employeeId: string) => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Grace', familyName: 'Hopper', email: `${employeeId.toLowerCase()}@example.com`, department: 'Engineering', employmentType: 'employee' },
});

/** One representative request per route group, sent with the given bearer token (or none). */
function calls(t: TestApp): Record<string, (token?: string) => Promise<{ status: number; body: any; contentType: string }>> {
  const send = async (method: string, path: string, token: string | undefined, body?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body,
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, contentType: res.headers.get('content-type') ?? '' };
  };
  return {
    'hr:write': (token) => {
      const raw = JSON.stringify(hire(`probe-${Math.random()}`, 'P0001'));
      return send('POST', '/hr/events', token, raw, { [SIGNATURE_HEADER]: sign(HR_SECRET, raw, Math.floor(t.clock.now().getTime() / 1000)) });
    },
    'sso:login': (token) => send('POST', '/sso/login', token, '{}'),
    scim: (token) => send('GET', '/scim/v2/ServiceProviderConfig', token),
    'audit:read': (token) => send('GET', '/identities?limit=1', token),
    admin: (token) => send('GET', '/credentials', token),
  };
}

describe('scoped API credentials on every route group', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ SCIM_TOKENS: SCIM_STATIC });
  });
  afterAll(async () => {
    await t.close();
  });

  it('each route group answers 401 without a valid credential, 403 with another scope, and runs with its own', async () => {
    const probes = calls(t);
    const scopes = Object.keys(probes);
    const tokens = Object.fromEntries(await Promise.all(scopes.map(async (s) => [s, await t.credential([s], `only-${s}`)])));
    const seen: string[] = [];
    for (const scope of scopes) {
      const call = probes[scope];
      for (const [label, token] of [['none', undefined], ['garbage', 'not-a-token'], ['forged', `idlc_${'0'.repeat(16)}_${'A'.repeat(43)}`]] as const) {
        const r = await call(token);
        expect([scope, label, r.status]).toEqual([scope, label, 401]);
        seen.push(`${scope}:${label}:401`);
      }
      for (const other of scopes.filter((s) => s !== scope)) {
        const r = await call(tokens[other]);
        expect([scope, other, r.status]).toEqual([scope, other, 403]);
      }
      const ok = await call(tokens[scope]);
      expect([scope, [401, 403].includes(ok.status)]).toEqual([scope, false]);
      expect([scope, ok.status < 500]).toEqual([scope, true]);
    }
    expect(seen).toHaveLength(15);
  });

  it('problem+json on the API, the SCIM error schema on SCIM routes, with the scope named', async () => {
    const probes = calls(t);
    const reader = await t.credential(['audit:read']);
    const none = await probes['audit:read']();
    expect(none.contentType).toContain('application/problem+json');
    expect(none.body).toMatchObject({ type: 'https://idlc.dev/problems/unauthorized', status: 401, requiredScope: 'audit:read' });
    const forbidden = await probes.admin(reader);
    expect(forbidden.body).toMatchObject({ type: 'https://idlc.dev/problems/forbidden', status: 403, requiredScope: 'admin' });
    const scimNone = await probes.scim();
    expect(scimNone.contentType).toContain('application/scim+json');
    expect(scimNone.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '401' });
    const scimForbidden = await probes.scim(reader);
    expect(scimForbidden.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '403' });
    // The IdP's configured static SCIM token keeps working beside credentials.
    expect((await probes.scim(SCIM_STATIC)).status).toBe(200);
    // Health and the UI shell stay open.
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/ui`)).status).toBe(200);
  });

  it('HMAC on HR webhooks still applies on top of the credential', async () => {
    const writer = await t.credential(['hr:write']);
    const raw = JSON.stringify(hire('hmac-1', 'H0001'));
    const unsigned = await fetch(`${t.url}/hr/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}` }, body: raw });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as any).type).toBe('https://idlc.dev/problems/invalid_signature');
    const before = await t.eventCount();
    const badSecret = await fetch(`${t.url}/hr/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}`, [SIGNATURE_HEADER]: sign('wrong-secret-0123456789', raw, Math.floor(t.clock.now().getTime() / 1000)) },
      body: raw,
    });
    expect(badSecret.status).toBe(401);
    expect(await t.eventCount()).toBe(before);
  });

  it('records which credential caused each change in the event metadata', async () => {
    const hrToken = await t.credential(['hr:write'], 'workday');
    const adminToken = await t.credential(['admin'], 'helpdesk');
    const raw = JSON.stringify(hire('meta-1', 'M0001'));
    const res = await fetch(`${t.url}/hr/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${hrToken}`, [SIGNATURE_HEADER]: sign(HR_SECRET, raw, Math.floor(t.clock.now().getTime() / 1000)) },
      body: raw,
    });
    const id = ((await res.json()) as any).results[0].identityId;
    const disabled = await t.post(`/identities/${id}/disable`, { note: 'ticket 42' }, { authorization: `Bearer ${adminToken}` });
    expect(disabled.status).toBe(200);
    const events = await t.engine.store.readStream(identityStream(id));
    const hired = events.find((e) => e.type === 'IdentityHired')!;
    const off = events.find((e) => e.type === 'AccountDisabled')!;
    const hrId = hrToken.split('_')[1];
    const adminId = adminToken.split('_')[1];
    expect(hired.metadata).toMatchObject({ source: 'hr-webhook', actor: `credential:${hrId}`, hrEventId: 'meta-1' });
    expect(off.metadata).toMatchObject({ source: 'admin', actor: `credential:${adminId}`, credentialId: adminId, credentialName: 'helpdesk' });
  });

  it('an expired credential is refused; credentials are managed over HTTP with admin, the token shown once', async () => {
    const admin = { authorization: `Bearer ${await t.credential(['admin'], 'ops')}` };
    const expiresAt = new Date(t.clock.now().getTime() + 3600_000).toISOString();
    const created = await t.post('/credentials', { name: 'okta-hook', scopes: ['sso:login', 'scim'], expiresAt }, admin);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'okta-hook', scopes: ['sso:login', 'scim'], expiresAt, revokedAt: null });
    expect(created.body.token).toMatch(TOKEN_SHAPE);
    const probes = calls(t);
    expect((await probes.scim(created.body.token)).status).toBe(200);
    const listed = await t.get('/credentials');
    const mine = listed.body.credentials.find((c: any) => c.id === created.body.id);
    expect(mine).toMatchObject({ name: 'okta-hook', scopes: ['sso:login', 'scim'] });
    expect(JSON.stringify(listed.body)).not.toContain(secretOf(created.body.token));
    expect(mine.token).toBeUndefined();

    t.clock.advance(3600_000);
    expect((await probes.scim(created.body.token)).status).toBe(401);

    const bad = await t.post('/credentials', { name: 'x', scopes: ['root'] }, admin);
    expect([bad.status, bad.body.detail]).toEqual([400, 'unknown scope "root" (known: hr:write, sso:login, scim, audit:read, admin)']);
    const reader = await t.credential(['audit:read']);
    const revoked = await fetch(`${t.url}/credentials/${reader.split('_')[1]}`, { method: 'DELETE', headers: admin });
    expect(revoked.status).toBe(200);
    expect((await probes['audit:read'](reader)).status).toBe(401);
    expect((await fetch(`${t.url}/credentials/0123456789abcdef`, { method: 'DELETE', headers: admin })).status).toBe(404);
  });
});

describe('idlc credentials:* (CLI), as an operator bootstraps a deployment', () => {
  it('create prints the token once, list never shows it, only a hash is stored, revoke takes effect on a running server', async () => {
    const t = await startTestApp();
    try {
      const made = cli(['credentials:create', '--name', 'workday-webhook', '--scopes', 'hr:write,audit:read', '--expires-in-days', '90'], t.dir);
      expect(made.stderr).not.toMatch(/Error/);
      expect(made.code).toBe(0);
      const lines = made.stdout.trim().split('\n');
      const token = lines[lines.length - 1];
      expect(token).toMatch(TOKEN_SHAPE);
      const id = token.split('_')[1];
      expect(lines[0]).toMatch(new RegExp(`^Created credential ${id} "workday-webhook" with scopes hr:write, audit:read, expiring \\d{4}-\\d{2}-\\d{2}T`));

      // The running server (another process wrote the row) accepts it.
      const probes = calls(t);
      expect((await probes['audit:read'](token)).status).toBe(200);
      expect((await probes.admin(token)).status).toBe(403);

      const list = cli(['credentials:list', '--json'], t.dir);
      expect(list.code).toBe(0);
      const listed = JSON.parse(list.stdout).credentials.find((c: any) => c.id === id);
      expect(listed).toMatchObject({ name: 'workday-webhook', scopes: ['hr:write', 'audit:read'], revokedAt: null });
      expect(list.stdout).not.toContain(secretOf(token));

      // Nothing on disk holds the secret: only its SHA-256.
      const secret = secretOf(token);
      const row = await t.engine.readDb.get<{ secret_sha256: string }>('SELECT secret_sha256 FROM api_credentials WHERE id = ?', [id]);
      expect(row!.secret_sha256).toMatch(/^[0-9a-f]{64}$/);
      for (const f of readdirSync(t.dir).filter((n) => n.startsWith('idlc.db'))) expect([f, readFileSync(join(t.dir, f)).includes(Buffer.from(secret))]).toEqual([f, false]);

      const revoked = cli(['credentials:revoke', id], t.dir);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toContain(`Revoked credential ${id} "workday-webhook"`);
      // Another process revoked it: this server notices within its cache window (5 s of its clock).
      t.clock.advance(5_001);
      expect((await probes['audit:read'](token)).status).toBe(401);

      const badScope = cli(['credentials:create', '--name', 'x', '--scopes', 'hr:write,superuser'], t.dir);
      expect([badScope.code, badScope.stderr.trim()]).toEqual([64, 'unknown scope "superuser" (known: hr:write, sso:login, scim, audit:read, admin)']);
      expect(cli(['credentials:revoke', 'feedfacefeedface'], t.dir).code).toBe(3);
    } finally {
      await t.close();
    }
  });
});
