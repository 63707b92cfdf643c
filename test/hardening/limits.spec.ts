import { request } from 'node:http';
import { jsonDepthExceeds } from '../../apps/api/src/observability/limits';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';

const SCIM_TOKEN = 'scim-limits-token-0123456789';
const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PROBLEM = 'https://idlc.dev/problems/';

interface Answer {
  status: number;
  contentType: string;
  body: any;
  ms: number;
}

/**
 * Sends a raw body with a declared content-length over plain http, so the server can answer a
 * 10 MB upload before the client has finished writing it (fetch would report the closed socket).
 */
/** The test app's all-scope credential; an explicit authorization header (SCIM) wins. */
let AUTH: Record<string, string> = {};

function send(url: string, path: string, body: Buffer | string, headers: Record<string, string>): Promise<Answer> {
  const started = Date.now();
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers: { ...AUTH, ...headers, 'content-length': String(buf.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: any = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode!, contentType: String(res.headers['content-type']), body: parsed, ms: Date.now() - started });
      });
    });
    req.on('error', reject);
    // The server may answer and close while we still write: that is the point, not a failure.
    req.write(buf, () => req.end());
    req.on('socket', (s) => s.on('error', () => undefined));
  });
}

const signed = (raw: string, ts = Math.floor(Date.parse('2026-01-05T09:00:00.000Z') / 1000)) => ({
  'content-type': 'application/json',
  [SIGNATURE_HEADER]: sign(HR_SECRET, raw, ts),
});
const scimHeaders = { authorization: `Bearer ${SCIM_TOKEN}`, 'content-type': 'application/scim+json' };
const nested = (depth: number) => '{"a":'.repeat(depth - 1) + '[1]' + '}'.repeat(depth - 1);

describe('input limits on the real server: body size per route, JSON depth, content types', () => {
  let t: TestApp;
  let events: number;
  beforeAll(async () => {
    t = await startTestApp({ SCIM_TOKENS: SCIM_TOKEN });
    AUTH = t.auth;
    events = await t.eventCount();
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(async () => {
    // Nothing refused here may leave a trace in the store.
    expect(await t.eventCount()).toBe(events);
  });

  it('refuses a 10 MB body fast with 413 problem+json, and SCIM error schema under /scim', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    const hr = await send(t.url, '/hr/events', big, signed(''));
    expect([hr.status, hr.contentType, hr.body.type]).toEqual([413, 'application/problem+json; charset=utf-8', `${PROBLEM}payload_too_large`]);
    expect(hr.ms).toBeLessThan(2000);
    const scim = await send(t.url, '/scim/v2/Users', big, scimHeaders);
    expect([scim.status, scim.contentType]).toEqual([413, 'application/scim+json; charset=utf-8']);
    expect(scim.body).toMatchObject({ schemas: [SCIM_ERROR], status: '413' });
    expect(scim.ms).toBeLessThan(2000);
  });

  it('applies each route its own limit: HR 4 MB, SCIM 1 MB, SSO login 256 KB, the rest 64 KB', async () => {
    const pad = (n: number) => JSON.stringify({ pad: 'x'.repeat(n) });
    // Under each limit the body is parsed and judged on its content (400/401), over it 413.
    const hrUnder = pad(3 * 1024 * 1024);
    expect((await send(t.url, '/hr/events', hrUnder, signed(hrUnder))).status).toBe(400);
    expect((await send(t.url, '/hr/events', pad(4 * 1024 * 1024 + 10), signed(''))).status).toBe(413);
    expect((await send(t.url, '/scim/v2/Users', pad(900 * 1024), scimHeaders)).status).toBe(400);
    expect((await send(t.url, '/scim/v2/Users', pad(1024 * 1024 + 10), scimHeaders)).status).toBe(413);
    expect((await send(t.url, '/sso/login', pad(200 * 1024), { 'content-type': 'application/json' })).status).toBe(400);
    const sso = await send(t.url, '/sso/login', pad(256 * 1024 + 10), { 'content-type': 'application/json' });
    expect([sso.status, sso.body.type]).toEqual([413, `${PROBLEM}payload_too_large`]);
    const roles = '/identities/3f1c1a2e-0000-4000-8000-000000000000/roles';
    expect((await send(t.url, roles, JSON.stringify({ role: 'r', pad: 'x'.repeat(60 * 1024) }), { 'content-type': 'application/json' })).status).not.toBe(413);
    expect((await send(t.url, roles, JSON.stringify({ role: 'r', pad: 'x'.repeat(65 * 1024) }), { 'content-type': 'application/json' })).status).toBe(413);
  });

  it('refuses JSON nested deeper than 32 with 400 before validation or the signature check', async () => {
    const deep = nested(33);
    const hr = await send(t.url, '/hr/events', deep, signed(deep));
    expect([hr.status, hr.contentType, hr.body.type, hr.body.detail]).toEqual([400, 'application/problem+json; charset=utf-8', `${PROBLEM}bad_request`, 'JSON nested deeper than 32 levels']);
    // Depth 32 is parsed and reaches the handler: unsigned it is a 401, signed a validation 400.
    const ok = nested(32);
    expect((await send(t.url, '/hr/events', ok, { 'content-type': 'application/json' })).status).toBe(401);
    const validation = await send(t.url, '/hr/events', ok, signed(ok));
    expect(validation.status).toBe(400);
    expect(validation.body.detail).not.toBe('JSON nested deeper than 32 levels');
    // A million brackets: one byte scan, no parse, fast.
    const huge = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    const started = Date.now();
    expect((await send(t.url, '/hr/events', huge, signed(huge))).status).toBe(400);
    expect(Date.now() - started).toBeLessThan(1500);
    const scim = await send(t.url, '/scim/v2/Users', nested(40), scimHeaders);
    expect(scim.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType: 'invalidSyntax', detail: 'JSON nested deeper than 32 levels' });
    const sso = await send(t.url, '/sso/login', nested(100), { 'content-type': 'application/json' });
    expect([sso.status, sso.body.detail]).toEqual([400, 'JSON nested deeper than 32 levels']);
  });

  it('counts depth outside strings only: brackets inside string values do not count', () => {
    expect(jsonDepthExceeds(Buffer.from(JSON.stringify({ s: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' })), 32)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(JSON.stringify({ s: 'a\\"[[[[' , t: '"{{{{{{' })), 3)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(nested(32)), 32)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(nested(33)), 32)).toBe(true);
  });

  it('tells shallow bodies with many brackets from deep ones (the bracket count only short-cuts the scan)', () => {
    // 500 objects in one array: 501 brackets, depth 2.
    const wide = Buffer.from(JSON.stringify(Array.from({ length: 500 }, (_, i) => ({ i }))));
    expect(jsonDepthExceeds(wide, 32)).toBe(false);
    expect(jsonDepthExceeds(wide, 1)).toBe(true);
    // Mixed '{' and '[' count together: 3 of each nest 6 deep.
    const mixed = Buffer.from('{"a":[{"b":[{"c":[1]}]}]}');
    expect(jsonDepthExceeds(mixed, 6)).toBe(false);
    expect(jsonDepthExceeds(mixed, 5)).toBe(true);
  });

  it('answers 415 problem+json for non-JSON bodies on JSON routes (SCIM error schema under /scim)', async () => {
    for (const [path, type] of [
      ['/hr/events', 'text/plain'],
      ['/hr/events', 'application/x-www-form-urlencoded'],
      ['/sso/login', 'application/xml'],
      ['/sso/login', 'multipart/form-data; boundary=x'],
      ['/identities/3f1c1a2e-0000-4000-8000-000000000000/roles', 'text/plain'],
    ]) {
      const r = await send(t.url, path, 'role=admin', { 'content-type': type });
      expect([path, type, r.status, r.contentType, r.body.type]).toEqual([path, type, 415, 'application/problem+json; charset=utf-8', `${PROBLEM}unsupported_media_type`]);
    }
    const scim = await send(t.url, '/scim/v2/Users', 'userName=x', { ...scimHeaders, 'content-type': 'text/xml' });
    expect(scim.body).toMatchObject({ schemas: [SCIM_ERROR], status: '415' });
  });

  it('answers a path segment over the router limit with 414 problem+json, not the router\'s own JSON', async () => {
    const long = 'x'.repeat(150);
    const r = await fetch(`${t.url}/identities/${long}/roles/${long}`, { method: 'DELETE', headers: t.auth });
    expect([r.status, r.headers.get('content-type')]).toEqual([414, 'application/problem+json; charset=utf-8']);
    expect(await r.json()).toEqual({
      type: `${PROBLEM}uri_too_long`,
      title: 'URI too long',
      status: 414,
      detail: 'a path segment is too long',
      instance: `/identities/${long}/roles/${long}`.slice(0, 200),
    });
    const scim = await fetch(`${t.url}/scim/v2/Users/${long}`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } });
    // SCIM routes take the rest of the path as one wildcard: a long id is simply not found, in SCIM form.
    expect(scim.status).toBe(404);
    expect(await scim.json()).toMatchObject({ schemas: [SCIM_ERROR], status: '404' });
  });

  it('refuses a nested `constructor` key by name (it used to crash class-transformer into a 500)', async () => {
    const raw = '{"events":[{"eventId":{"":{"constructor":-1}},"type":"","employeeId":null,"effectiveDate":null,"attributes":null}]}';
    const r = await send(t.url, '/hr/events', raw, signed(raw));
    expect([r.status, r.contentType]).toEqual([400, 'application/problem+json; charset=utf-8']);
    expect(r.body.errors).toEqual([{ field: 'events[0].eventId..constructor', message: 'this key is not allowed' }]);
  });

  it('keeps the raw body for the HR signature: a signed hire is still applied', async () => {
    const raw = JSON.stringify({
      eventId: 'lim-1',
      type: 'hire',
      employeeId: 'LIM1',
      effectiveDate: '2026-01-05',
      attributes: { givenName: 'Ada', familyName: 'L', email: 'lim1@example.com', department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' },
    });
    const r = await send(t.url, '/hr/events', raw, signed(raw));
    expect([r.status, r.body.results?.[0]?.status]).toEqual([200, 'applied']);
    events = await t.eventCount();
  });
});
