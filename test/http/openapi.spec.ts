import { SCOPES } from '@idlc/engine';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { startTestApp, TestApp } from '../support/app';

/**
 * The served OpenAPI document describes what each route really answers (scripts/schemathesis.sh
 * checks live responses against it in CI): a 2xx body schema and problem+json for every error.
 */
describe('/docs/openapi.json', () => {
  let t: TestApp;
  let doc: any;
  beforeAll(async () => {
    t = await startTestApp();
    const r = await t.get('/docs/openapi.json');
    expect(r.status).toBe(200);
    doc = r.body;
  });
  afterAll(async () => {
    await t.close();
  });

  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })));

  it('gives every operation a documented success body and problem+json errors', () => {
    const missing: string[] = [];
    for (const { name, op } of operations()) {
      const statuses = Object.keys(op.responses ?? {});
      const ok = statuses.filter((s) => s.startsWith('2'));
      if (!ok.length) missing.push(`${name}: no 2xx`);
      for (const s of ok) if (!Object.values(op.responses[s].content ?? {}).some((c: any) => c.schema)) missing.push(`${name} ${s}: no body schema`);
      const errors = statuses.filter((s) => /^[45]/.test(s));
      if (!errors.length && !['GET /health', 'GET /ready'].includes(name)) missing.push(`${name}: no error answers`);
      for (const s of errors) {
        const content = Object.keys(op.responses[s].content ?? {});
        if (!(name === 'GET /ready' && s === '503') && JSON.stringify(content) !== '["application/problem+json"]') missing.push(`${name} ${s}: ${content.join(', ') || 'no content'}`);
      }
    }
    expect(missing).toEqual([]);
    expect(operations().length).toBeGreaterThanOrEqual(18);
  });

  it('resolves every schema reference', () => {
    const refs = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === '$ref' ? refs.add(x as string) : walk(x);
    };
    walk(doc);
    const unresolved = [...refs].filter((r) => !doc.components?.schemas?.[r.replace('#/components/schemas/', '')]);
    expect(unresolved).toEqual([]);
    expect(refs.has('#/components/schemas/Problem')).toBe(true);
  });

  it('documents the bodies the HR webhook and the identity routes really return', async () => {
    const hr = doc.paths['/hr/events'].post;
    expect(hr.requestBody.content['application/json'].schema).toEqual({ anyOf: [{ $ref: '#/components/schemas/HrEvent' }, { $ref: '#/components/schemas/HrBatch' }] });
    expect(Object.keys(hr.responses).sort()).toEqual(['200', '400', '401', '403', '404', '409', '413', '415', '503']);
    const r = await t.hr({ eventId: 'oa-1', type: 'hire', employeeId: 'OA1', effectiveDate: '2026-01-05', attributes: { givenName: 'Ada', familyName: 'L', email: 'oa1@example.com' } });
    expect(r.status).toBe(200);
    await t.settle();
    const identity = (await t.get(`/identities/${r.body.results[0].identityId}`)).body;
    // Exactly the documented members, each of them present.
    expect(Object.keys(identity).sort()).toEqual(Object.keys(doc.components.schemas.Identity.properties).sort());
    expect([...doc.components.schemas.Identity.required].sort()).toEqual(Object.keys(identity).sort());
    expect(Object.keys(r.body).sort()).toEqual([...doc.components.schemas.HrEventsResponse.required].sort());
  });
  it('POST /credentials: the documented body schema and the server accept and refuse the same bodies', async () => {
    const ajv = new Ajv({ strict: false });
    addFormats(ajv);
    const schema = doc.paths['/credentials'].post.requestBody.content['application/json'].schema;
    const documented = ajv.compile(schema);
    const future = '2026-02-01T00:00:00.000Z'; // the test clock stands at 2026-01-05
    const bodies: Record<string, unknown> = {
      minimal: { name: 'okta-hook', scopes: ['sso:login'] },
      'every scope, an expiry': { name: 'ops', scopes: [...SCOPES], expiresAt: future },
      'name of 100 characters': { name: 'n'.repeat(100), scopes: ['scim'] },
      'name padded with spaces': { name: '  hook  ', scopes: ['scim'] },
      'name of 101 characters': { name: 'n'.repeat(101), scopes: ['scim'] },
      'empty name': { name: '', scopes: ['scim'] },
      'blank name': { name: '   ', scopes: ['scim'] },
      'control character in name': { name: 'a\u0007b', scopes: ['scim'] },
      'name not a string': { name: 7, scopes: ['scim'] },
      'no name': { scopes: ['scim'] },
      'no scopes': { name: 'x' },
      'empty scopes': { name: 'x', scopes: [] },
      'unknown scope': { name: 'x', scopes: ['root'] },
      'more scopes than exist': { name: 'x', scopes: [...SCOPES, SCOPES[0]] },
      'unknown member': { name: 'x', scopes: ['scim'], owner: 'me' },
      'expiry not an instant': { name: 'x', scopes: ['scim'], expiresAt: 'tomorrow' },
      'not an object': ['x'],
    };
    const disagreements: string[] = [];
    for (const [label, body] of Object.entries(bodies)) {
      const r = await t.post('/credentials', body);
      expect([201, 400]).toContain(r.status);
      if ((r.status === 201) !== documented(body)) disagreements.push(`${label}: server ${r.status}, schema ${documented(body) ? 'valid' : 'invalid'}`);
    }
    expect(disagreements).toEqual([]);
    // What the schema can only describe: an expiry already past is valid JSON Schema, refused here.
    const past = { name: 'late', scopes: ['scim'], expiresAt: '2026-01-01T00:00:00.000Z' };
    expect(documented(past)).toBe(true);
    expect((await t.post('/credentials', past)).status).toBe(400);
    expect(schema.properties.expiresAt.description).toMatch(/future/);
  });
});
