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
});
