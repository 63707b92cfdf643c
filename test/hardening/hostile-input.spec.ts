import fc from 'fast-check';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';
import { TestOidcIdp, TestSamlIdp } from '../support/test-idp';

/**
 * Property-based hostile input against the real server. Every answer must be a 4xx with
 * problem+json (SCIM error schema under /scim), or a 200 for a read that matched nothing; never a
 * 5xx, never a hang; and the event count never moves. Generators are built so that no input can be
 * valid (each carries at least one field that the route must refuse), so "nothing appended" is exact.
 */

const SCIM_TOKEN = 'scim-fuzz-token-0123456789abcdef';
const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const REQUEST_TIMEOUT_MS = 5000;
// Bounded so the suite stays fast; FUZZ_RUNS raises it for a local soak, FUZZ_SEED replays a reported failure.
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const SEED = process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {};

// ---- a JSON tree we serialize ourselves, so keys like __proto__ reach the wire as written ----
type J = null | boolean | number | string | { raw: string } | J[] | { entries: [string, J][] };

const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '', ' ', '\u0000', '\uFEFF', '$where', 'a.b', 'a[0]', 'schemas', 'eventId', 'type'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);
const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '\u0000',
    '\uD800',
    '\uDFFF',
    '\u202Eevil',
    'A\u0301\u0301\u0301',
    '\uFEFF',
    '𝕏'.repeat(300),
    '../../etc/passwd',
    "' OR 1=1 --",
    '${jndi:ldap://127.0.0.1/a}',
    '<script>alert(1)</script>',
    'NaN',
    '-0',
    '2026-02-30',
    '9999-12-31T23:59:59Z',
    '+275760-09-13T00:00:00.001Z',
  ),
);
const hugeNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER - 2, 5e-324, -0, 0.1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(10n ** 60n), max: 10n ** 60n }).map((n) => ({ raw: n.toString() })),
  fc.constantFrom({ raw: '1e400' }, { raw: '-1e400' }, { raw: '123456789012345678901234567890.5e-999' }),
);
const { tree } = fc.letrec<{ tree: J }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hugeNumber as fc.Arbitrary<J>,
    hostileString,
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.array(fc.tuple(hostileKey, tie('tree')), { maxLength: 5 }).map((entries) => ({ entries })),
  ),
}));

function ser(v: J): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return Object.is(v, -0) ? '-0' : JSON.stringify(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(ser).join(',')}]`;
  if ('raw' in v) return v.raw;
  return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${ser(x)}`).join(',')}}`;
}
const obj = (entries: [string, J][]): J => ({ entries });

/** Raw bodies that are not JSON at all, or JSON too deep to be parsed. */
const notJson = fc.oneof(
  fc.string({ maxLength: 60 }).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
  fc.constantFrom('{', '[1,2', '{"a":1,}', "{'a':1}", 'undefined', 'NaN', '\uFEFF{}', '{"a":1}{"b":2}', '{"__proto__":{"x":1}'),
  fc.integer({ min: 33, max: 3000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 33, max: 500 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
);

/** Percent-encodes every UTF-8 byte (lone surrogates become U+FFFD, as on any real wire). */
const enc = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

// ---- input classes and their counts, printed at the end ----
const tried = new Map<string, number>();
const tally = (cls: string) => tried.set(cls, (tried.get(cls) ?? 0) + 1);

interface Answer {
  status: number;
  contentType: string;
  body: any;
}

describe('hostile input on every public route: 4xx problem+json, never 5xx, nothing appended', () => {
  let t: TestApp;
  let events: number;
  let userId: string;
  let identityId: string;
  let oidc: TestOidcIdp;
  let saml: TestSamlIdp;
  let idpDir: string;
  let signedToken: string;
  let signedSamlXml: string;

  async function call(method: string, path: string, raw?: string, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${t.url}${path}`, { method, headers: { ...t.auth, ...headers }, body: raw, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // kept as text: the checks below then fail with it in the message
    }
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
  }

  /** The refusal contract: 4xx, the right error format, nothing stored. */
  async function refused(a: Answer, where: string, opts: { scim?: boolean; okReads?: boolean } = {}) {
    const ctx = `${where} -> ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`;
    if (opts.okReads && a.status === 200) {
      expect([ctx, a.contentType.startsWith('application/')]).toEqual([ctx, true]);
    } else {
      expect([ctx, a.status >= 400 && a.status < 500]).toEqual([ctx, true]);
      if (opts.scim) {
        expect([ctx, a.contentType, a.body?.schemas, a.body?.status]).toEqual([ctx, 'application/scim+json; charset=utf-8', [SCIM_ERROR], String(a.status)]);
      } else {
        expect([ctx, a.contentType, String(a.body?.type).startsWith('https://idlc.dev/problems/'), a.body?.status]).toEqual([
          ctx,
          'application/problem+json; charset=utf-8',
          true,
          a.status,
        ]);
      }
    }
    expect([ctx, await t.eventCount()]).toEqual([ctx, events]);
  }

  const hrSigned = (raw: string) => ({ 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(HR_SECRET, raw, Math.floor(t.clock.now().getTime() / 1000)) });
  const scimHeaders = { authorization: `Bearer ${SCIM_TOKEN}`, 'content-type': 'application/scim+json' };

  beforeAll(async () => {
    // Trusted IdPs, so SSO garbage meets the real verifiers, not just "unknown issuer".
    [oidc, saml] = await Promise.all([TestOidcIdp.start(), TestSamlIdp.create()]);
    idpDir = mkdtempSync(join(tmpdir(), 'idlc-fuzz-idp-'));
    const idps = join(idpDir, 'idps.json');
    writeFileSync(idps, JSON.stringify([oidc.config({ id: 'fz-oidc', jit: true }), saml.config({ id: 'fz-saml', jit: true })]));
    t = await startTestApp({ SCIM_TOKENS: SCIM_TOKEN, SSO_IDPS_FILE: idps });
    signedToken = await oidc.signIdToken({ alg: 'RS256', now: t.clock.now(), claims: { email: 'fz@example.com' } });
    signedSamlXml = saml.responseXml({ now: t.clock.now() });
    // One identity from HR and one SCIM user, so routes with ids also meet real targets.
    const hire = await t.hr({
      eventId: 'fz-1',
      type: 'hire',
      employeeId: 'FZ1',
      effectiveDate: '2026-01-05',
      attributes: { givenName: 'Ada', familyName: 'L', email: 'fz1@example.com', department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' },
    });
    identityId = hire.body.results[0].identityId;
    const u = await call('POST', '/scim/v2/Users', JSON.stringify({ schemas: [USER], userName: 'fuzz.user@example.com', externalId: 'fz-ext-1' }), scimHeaders);
    expect(u.status).toBe(201);
    userId = u.body.id;
    await t.settle();
    events = await t.eventCount();
  });
  afterAll(async () => {
    await t?.close();
    await oidc?.stop();
    if (idpDir) rmSync(idpDir, { recursive: true, force: true });
    const lines = [...tried].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${k}: ${n}`);
    console.log(`hostile input classes tried (${[...tried.values()].reduce((a, b) => a + b, 0)} requests):\n${lines.join('\n')}`);
  });

  // HR events that cannot be valid: the type is never one of hire|change|terminate|rehire.
  const badHrEvent = fc
    .record({
      eventId: fc.oneof(hostileString, tree),
      type: fc.oneof(hostileString.filter((s) => !['hire', 'change', 'terminate', 'rehire'].includes(s)), tree.filter((x) => typeof x !== 'string')),
      employeeId: fc.oneof(hostileString, tree),
      effectiveDate: fc.oneof(hostileString, tree),
      attributes: tree,
      extra: fc.array(fc.tuple(hostileKey, tree), { maxLength: 3 }),
    })
    .map((r) => obj([['eventId', r.eventId as J], ['type', r.type as J], ['employeeId', r.employeeId as J], ['effectiveDate', r.effectiveDate as J], ['attributes', r.attributes], ...r.extra]));
  const hrBody = fc.oneof(
    badHrEvent.map((e) => ['hr:event', ser(e)] as const),
    fc.array(badHrEvent, { minLength: 1, maxLength: 5 }).map((es) => ['hr:batch', `{"events":[${es.map(ser).join(',')}]}`] as const),
    tree.map((x) => ['hr:any-json', ser(x)] as const),
    fc.integer({ min: 1001, max: 1100 }).map((n) => ['hr:batch-too-many', `{"events":[${Array(n).fill('{}').join(',')}]}`] as const),
    notJson.map((s) => ['hr:not-json-or-too-deep', s] as const),
  ).filter(([, raw]) => raw.length > 0);

  it('HR webhook, signed: hostile DTOs, batches, proto keys, huge numbers, unicode, deep nesting', async () => {
    await fc.assert(
      fc.asyncProperty(hrBody, async ([cls, raw]) => {
        tally(`${cls} (signed)`);
        await refused(await call('POST', '/hr/events', raw, hrSigned(raw)), `hr signed ${cls} ${raw.slice(0, 200)}`);
      }),
      { numRuns: RUNS * 2, ...SEED },
    );
  });

  it('HR webhook, unsigned or badly signed: always refused, even a valid hire', async () => {
    const validHire = JSON.stringify({ eventId: 'fz-x', type: 'hire', employeeId: 'FZX', effectiveDate: '2026-01-05', attributes: { givenName: 'A', familyName: 'B', email: 'x@example.com' } });
    const signature = fc.oneof(
      fc.constant(undefined),
      hostileString,
      fc.constantFrom('t=0,v1=00', 't=abc,v1=', 'v1=' + 'a'.repeat(64), `t=${Number.MAX_SAFE_INTEGER},v1=${'0'.repeat(64)}`),
      fc.integer({ min: -1e9, max: 1e10 }).map((ts) => sign('wrong-secret-0123456789', validHire, ts)),
      fc.constant('stale'),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(hrBody.map(([, r]) => r), fc.constant(validHire)), signature, async (raw, sig) => {
        tally(sig === undefined ? 'hr:unsigned' : sig === 'stale' ? 'hr:stale-signature' : 'hr:bad-signature');
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        // A signature a day old, by the right secret: outside the replay window.
        if (sig === 'stale') headers[SIGNATURE_HEADER] = sign(HR_SECRET, raw, Math.floor(t.clock.now().getTime() / 1000) - 86400);
        else if (sig !== undefined) headers[SIGNATURE_HEADER] = sig.replace(/[^\x20-\x7e]/g, '?');
        await refused(await call('POST', '/hr/events', raw, headers), `hr ${sig === undefined ? 'unsigned' : 'bad sig'} ${raw.slice(0, 200)}`);
      }),
      { numRuns: RUNS, ...SEED },
    );
  });

  it('SSO login: JWT and SAML garbage, wrong shapes', async () => {
    const b64url = (s: string) => Buffer.from(s).toString('base64url');
    const jwtish = fc.oneof(
      hostileString,
      fc.tuple(tree, tree, hostileString).map(([h, p, s]) => `${b64url(ser(h))}.${b64url(ser(p))}.${b64url(s)}`),
      fc.constantFrom(
        `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url('{"iss":"https://idp.example.com","sub":"x","aud":"idlc","exp":99999999999}')}.`,
        `${b64url('{"alg":"HS256","kid":"../../../../dev/null"}')}.${b64url('{"iss":"x"}')}.AAAA`,
        'a.b.c.d.e',
        '...',
      ),
    );
    const samlish = fc.oneof(
      hostileString.map((s) => Buffer.from(s).toString('base64')),
      hostileString,
      fc.constantFrom(
        Buffer.from('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>').toString('base64'),
        Buffer.from('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><Assertion/></samlp:Response>').toString('base64'),
        Buffer.from('<a>' + '<b>'.repeat(5000) + '</b>'.repeat(5000) + '</a>').toString('base64'),
      ),
    );
    const xmlEsc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    const body = fc.oneof(
      // A token the trusted IdP really signed, with its claims swapped for hostile ones: the signature no longer holds.
      tree.map((claims) => {
        const [h, , sig] = signedToken.split('.');
        return ['sso:oidc-signed-then-tampered', ser(obj([['idToken', `${h}.${b64url(ser(claims))}.${sig}`]]))] as const;
      }),
      fc.tuple(hostileString, hostileString).map(([sub, email]) => ['sso:oidc-alg-none', ser(obj([['idToken', oidc.unsignedIdToken({ now: t.clock.now(), claims: { sub, email } })]]))] as const),
      // A SAML response the trusted IdP really signed, with a hostile NameID: signature broken, or wrapped.
      hostileString.filter((n) => (xmlEsc(n) || 'x') !== /<saml:NameID[^>]*>([^<]*)</.exec(signedSamlXml)?.[1]).map((nameId) => [
        'sso:saml-signed-then-tampered',
        ser(obj([['samlResponse', Buffer.from(signedSamlXml.replace(/(<saml:NameID[^>]*>)[^<]*(<\/saml:NameID>)/, `$1${xmlEsc(nameId) || 'x'}$2`)).toString('base64')]])),
      ] as const),
      jwtish.map((s) => ['sso:jwt-garbage', ser(obj([['idToken', s]]))] as const),
      samlish.map((s) => ['sso:saml-garbage', ser(obj([['samlResponse', s]]))] as const),
      fc.tuple(jwtish, samlish).map(([a, b]) => ['sso:both', ser(obj([['idToken', a], ['samlResponse', b]]))] as const),
      tree.map((x) => ['sso:any-json', ser(x)] as const),
      notJson.map((s) => ['sso:not-json-or-too-deep', s] as const),
    ).filter(([, raw]) => raw.length > 0);
    await fc.assert(
      fc.asyncProperty(body, async ([cls, raw]) => {
        tally(cls);
        await refused(await call('POST', '/sso/login', raw, { 'content-type': 'application/json' }), `sso ${cls} ${raw.slice(0, 200)}`);
      }),
      { numRuns: RUNS, ...SEED },
    );
    // Control: the untampered credentials do log in, so the refusals above came from the verifiers.
    const good = await call('POST', '/sso/login', JSON.stringify({ idToken: signedToken }), { 'content-type': 'application/json' });
    const goodSaml = await call('POST', '/sso/login', JSON.stringify({ samlResponse: Buffer.from(signedSamlXml).toString('base64') }), { 'content-type': 'application/json' });
    expect([good.status, goodSaml.status]).toEqual([200, 200]);
    events = await t.eventCount();
  });

  it('SCIM with a valid token: filters, PATCH bodies that cannot apply, bad creates', async () => {
    const filterText = fc.oneof(
      hostileString,
      fc.tuple(fc.constantFrom('userName', 'emails[type eq "work"].value', 'meta.lastModified', 'name.familyName', 'x', '__proto__', 'a.b.c.d'), fc.constantFrom('eq', 'ne', 'co', 'sw', 'gt', 'pr', 'EQ', 'xx', 'and', ''), fc.oneof(hostileString.map((s) => JSON.stringify(s)), fc.constantFrom('1e999', 'true', 'null', '"', '(', ')')))
        .map(([a, op, v]) => `${a} ${op} ${v}`),
      fc.integer({ min: 1, max: 400 }).map((d) => '('.repeat(d) + 'userName eq "a"' + ')'.repeat(d)),
      fc.integer({ min: 1, max: 200 }).map((n) => Array(n).fill('userName eq "a"').join(' or ')),
    );
    const badOp = hostileString.filter((s) => !['add', 'remove', 'replace'].includes(s.toLowerCase()));
    const patchBody = fc.oneof(
      fc.tuple(badOp, tree, tree).map(([op, path, value]) => ['scim:patch-bad-op', ser(obj([['schemas', [PATCH_OP]], ['Operations', [obj([['op', op], ['path', path], ['value', value]])]]]))] as const),
      fc.tuple(tree, tree).map(([ops, schemas]) => ['scim:patch-wrong-schema', ser(obj([['schemas', Array.isArray(schemas) ? schemas.filter((s) => s !== PATCH_OP) : schemas], ['Operations', ops]]))] as const),
      fc.tuple(fc.constantFrom('remove', 'replace', 'add'), hostileString.filter((s) => s.trim() !== ''), fc.constant(null)).map(([op, path]) => [
        'scim:patch-garbage-path-no-value',
        ser(obj([['schemas', [PATCH_OP]], ['Operations', [obj([['op', op], ['path', `${path}[`], ['value', null]])]]])),
      ] as const),
      notJson.map((s) => ['scim:patch-not-json-or-too-deep', s] as const),
    );
    const createBody = fc.oneof(
      tree.map((x) => ['scim:create-any-json', ser(x)] as const),
      fc.tuple(tree, fc.array(fc.tuple(hostileKey, tree), { maxLength: 4 })).map(([userName, extra]) => [
        'scim:create-no-user-schema',
        ser(obj([['schemas', ['urn:example:not-a-user']], ['userName', userName], ...extra])),
      ] as const),
    );
    const req = fc.oneof(
      fc.tuple(fc.constantFrom('Users', 'Groups'), filterText).map(([res, f]) => ({ cls: 'scim:filter', method: 'GET', path: `/scim/v2/${res}?filter=${enc(f)}&count=${enc('5')}`, raw: undefined as string | undefined, okReads: true })),
      fc.tuple(fc.oneof(hostileString, fc.constantFrom('-1', '1e9', '99999999999999999999', 'abc')), fc.oneof(hostileString, fc.constantFrom('0', '-5', '1e309'))).map(([count, start]) => ({
        cls: 'scim:paging',
        method: 'GET',
        path: `/scim/v2/Users?count=${enc(count)}&startIndex=${enc(start)}`,
        raw: undefined as string | undefined,
        okReads: true,
      })),
      patchBody.map(([cls, raw]) => ({ cls, method: 'PATCH', path: `/scim/v2/Users/${userId}`, raw: raw as string | undefined, okReads: false })),
      fc.tuple(patchBody, hostileString).map(([[, raw], id]) => ({ cls: 'scim:patch-unknown-id', method: 'PATCH', path: `/scim/v2/Users/${enc(id || 'x')}`, raw: raw as string | undefined, okReads: false })),
      createBody.map(([cls, raw]) => ({ cls, method: 'POST', path: '/scim/v2/Users', raw: raw as string | undefined, okReads: false })),
    );
    await fc.assert(
      fc.asyncProperty(req, async (r) => {
        tally(r.cls);
        const a = await call(r.method, r.path, r.raw, r.raw === undefined ? { authorization: scimHeaders.authorization } : scimHeaders);
        await refused(a, `${r.method} ${r.path.slice(0, 200)} ${r.raw?.slice(0, 200) ?? ''}`, { scim: true, okReads: r.okReads });
        if (a.status === 200) expect(a.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
      }),
      { numRuns: RUNS * 2, ...SEED },
    );
    // The user the PATCHes aimed at is exactly as created.
    const u = await call('GET', `/scim/v2/Users/${userId}`, undefined, { authorization: scimHeaders.authorization });
    expect([u.status, u.body.userName, u.body.externalId]).toEqual([200, 'fuzz.user@example.com', 'fz-ext-1']);
  });

  it('SCIM without a valid token: 401 in the SCIM error schema whatever the body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant(undefined), hostileString.map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, '')}`), fc.constantFrom('Basic YTpi', 'Bearer', 'bearer ' + SCIM_TOKEN.slice(0, -1))), tree, async (auth, body) => {
        tally('scim:bad-token');
        const headers: Record<string, string> = { 'content-type': 'application/scim+json' };
        if (auth !== undefined) headers.authorization = auth;
        const a = await call('POST', '/scim/v2/Users', ser(body), headers);
        await refused(a, `scim auth ${auth}`, { scim: true });
      }),
      { numRuns: RUNS / 2, ...SEED },
    );
  });

  it('admin and audit routes: hostile ids, roles, query strings and bodies', async () => {
    const id = fc.oneof(hostileString.filter((s) => s.length > 0), fc.uuid(), fc.constant(identityId));
    const q = fc.oneof(hostileString, fc.constantFrom('-1', '0', '1e309', '99999999999999999999999', 'NaN', '2026-13-45T25:61:61Z', '[]', '{}'));
    const req = fc.oneof(
      // A role grant that cannot apply: the identity is not the real one, or the body has no string role.
      fc.tuple(id, tree).map(([i, b]) => ({ cls: 'admin:grant', method: 'POST', path: `/identities/${enc(i)}/roles`, raw: ser(i === identityId ? obj([['role', Array.isArray(b) ? b : [b]]]) : obj([['role', b]])) as string | undefined })),
      fc.tuple(id.filter((i) => i !== identityId), hostileString).map(([i, r]) => ({ cls: 'admin:revoke', method: 'DELETE', path: `/identities/${enc(i)}/roles/${enc(r || 'x')}`, raw: undefined as string | undefined })),
      fc.tuple(id.filter((i) => i !== identityId), fc.constantFrom('disable', 'enable'), tree).map(([i, what, b]) => ({ cls: `admin:${what}`, method: 'POST', path: `/identities/${enc(i)}/${what}`, raw: ser(b) as string | undefined })),
      fc.tuple(id, q).map(([i, at]) => ({ cls: 'audit:state-at', method: 'GET', path: `/identities/${enc(i)}/state?at=${enc(at)}`, raw: undefined as string | undefined })),
      id.map((i) => ({ cls: 'audit:identity', method: 'GET', path: `/identities/${enc(i)}`, raw: undefined as string | undefined })),
      id.map((i) => ({ cls: 'audit:history', method: 'GET', path: `/identities/${enc(i)}/history`, raw: undefined as string | undefined })),
      fc.tuple(q, q, q, q).map(([limit, after, status, email]) => ({
        cls: 'audit:list-query',
        method: 'GET',
        path: `/identities?limit=${enc(limit)}&after=${enc(after)}&status=${enc(status)}&email=${enc(email)}&employeeId=${enc(email)}&role=${enc(after)}`,
        raw: undefined as string | undefined,
      })),
      fc.tuple(hostileString, q).map(([role, at]) => ({ cls: 'audit:role-members', method: 'GET', path: `/roles/${enc(role || 'x')}/members?at=${enc(at)}`, raw: undefined as string | undefined })),
      fc.tuple(q, q).map(([from, to]) => ({ cls: 'deprovisioning:upcoming', method: 'GET', path: `/deprovisioning/upcoming?from=${enc(from)}&to=${enc(to)}&limit=${enc(from)}`, raw: undefined as string | undefined })),
    );
    await fc.assert(
      fc.asyncProperty(req, async (r) => {
        tally(r.cls);
        const headers: Record<string, string> = r.raw === undefined ? {} : { 'content-type': 'application/json' };
        await refused(await call(r.method, r.path, r.raw, headers), `${r.method} ${r.path.slice(0, 200)} ${r.raw?.slice(0, 200) ?? ''}`, { okReads: r.method === 'GET' });
      }),
      { numRuns: RUNS * 2, ...SEED },
    );
  });
});
