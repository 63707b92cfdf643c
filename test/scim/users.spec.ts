import { ENTERPRISE, ERROR, LIST, PATCH, ScimClient, SCIM_TOKEN, startScim, USER, userBody } from './scim-client';

const q = (filter: string, extra = '') => `/Users?filter=${encodeURIComponent(filter)}${extra}`;

describe('SCIM Users, driven over HTTP as Okta and Entra ID do', () => {
  let c: ScimClient;
  beforeEach(async () => {
    c = await startScim();
  });
  afterEach(async () => {
    await c.close();
  });

  it('Okta: create with password and groups, look up by userName, deactivate, reactivate; every write is in the history', async () => {
    const before = await c.t.eventCount();
    const created = await c.req(
      'POST',
      '/Users',
      userBody('grace@example.com', {
        externalId: '00u1abcd',
        password: 'Sup3r-Secret!',
        groups: [],
        displayName: 'Grace Hopper',
        title: 'Rear Admiral',
        [ENTERPRISE]: { department: 'Engineering', employeeNumber: '42' },
        schemas: [USER, ENTERPRISE],
      }),
    );
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/scim+json; charset=utf-8');
    const id = created.body.id;
    expect(created.headers.get('location')).toBe(created.body.meta.location);
    expect(created.body.meta.location).toBe(`${c.base}/Users/${id}`);
    expect(created.headers.get('etag')).toBe(created.body.meta.version);
    expect(created.body.meta).toMatchObject({ resourceType: 'User', created: '2026-01-05T09:00:00.000Z', lastModified: '2026-01-05T09:00:00.000Z' });
    expect(created.body.password).toBeUndefined();
    expect(created.body).toMatchObject({
      schemas: [USER, ENTERPRISE],
      userName: 'grace@example.com',
      externalId: '00u1abcd',
      active: true,
      displayName: 'Grace Hopper',
      [ENTERPRISE]: { department: 'Engineering', employeeNumber: '42' },
    });

    // The password is never stored: not in any event.
    const history = await c.history(id);
    expect(JSON.stringify(history)).not.toContain('Sup3r-Secret!');
    expect(history.map((e: any) => e.type)).toEqual([
      'ExternalKeyLinked',
      'ExternalKeyLinked',
      'AccountProvisioned',
      'RoleGranted',
      'RoleGranted',
      'RoleGranted',
      'ScimResourceReplaced',
    ]);
    expect(history.every((e: any) => e.source === 'scim' && e.actor === 'scim-token-2')).toBe(true);
    expect(history[2].data.attributes).toEqual({
      givenName: 'Ada',
      familyName: 'Lovelace',
      displayName: 'Grace Hopper',
      title: 'Rear Admiral',
      email: 'grace@example.com',
      department: 'Engineering',
    });
    expect(await c.t.eventCount()).toBe(before + 7);

    // Okta's lookup, immediately after the write (read-after-write without waiting).
    const found = await c.req('GET', q('userName eq "GRACE@example.com"', '&startIndex=1&count=100'));
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ schemas: [LIST], totalResults: 1, startIndex: 1, itemsPerPage: 1 });
    expect(found.body.Resources[0].id).toBe(id);
    const none = await c.req('GET', q('userName eq "nobody-1d2f@example.com"', '&startIndex=1&count=100'));
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ schemas: [LIST], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });

    // Okta deactivates with a path-less replace.
    const off = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    expect(off.headers.get('etag')).toBe(off.body.meta.version);
    expect(off.body.meta.version).not.toBe(created.body.meta.version);
    let events = await c.history(id);
    const disabled = events.find((e: any) => e.type === 'AccountDisabled');
    expect(disabled.data).toMatchObject({ reason: 'scim', source: 'scim' });
    expect((await c.req('GET', `/Users/${id}`)).body.active).toBe(false);
    expect((await c.t.get(`/identities/${id}`)).body.status).toBe('disabled');

    const on = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(on.body.active).toBe(true);
    events = await c.history(id);
    expect(events.filter((e: any) => e.type === 'AccountEnabled').map((e: any) => e.data)).toEqual([{ reason: 'scim', source: 'scim' }]);
  });

  it('a userName clash answers 409 uniqueness, case-insensitively, and appends nothing', async () => {
    expect((await c.req('POST', '/Users', userBody('dup@example.com', { externalId: 'e-1' }))).status).toBe(201);
    const before = await c.t.eventCount();
    const clash = await c.req('POST', '/Users', userBody('DUP@Example.com'));
    expect(clash.status).toBe(409);
    expect(clash.body).toEqual({ schemas: [ERROR], status: '409', scimType: 'uniqueness', detail: 'userName DUP@Example.com is already taken' });
    const extClash = await c.req('POST', '/Users', userBody('other@example.com', { externalId: 'e-1' }));
    expect(extClash.status).toBe(409);
    expect(extClash.body.scimType).toBe('uniqueness');
    expect(await c.t.eventCount()).toBe(before);
  });

  it('PUT replaces the resource: attributes change with source scim, a new userName moves the key', async () => {
    const id = (await c.req('POST', '/Users', userBody('old@example.com', { externalId: 'x-1', nickName: 'Old' }))).body.id;
    const put = await c.req('PUT', `/Users/${id}`, {
      schemas: [USER],
      id: 'ignored-read-only',
      userName: 'new@example.com',
      externalId: 'x-1',
      name: { givenName: 'Ada', familyName: 'Byron' },
      emails: [{ value: 'new@example.com', type: 'work', primary: true }, { value: 'home@example.org', type: 'home' }],
      phoneNumbers: [{ value: '+44 20 7946 0000', type: 'work' }],
      active: true,
    });
    expect(put.status).toBe(200);
    expect(put.body.id).toBe(id);
    expect(put.body.nickName).toBeUndefined();
    expect(put.body.emails).toEqual([
      { value: 'new@example.com', type: 'work', primary: true },
      { value: 'home@example.org', type: 'home' },
    ]);
    const events = await c.history(id);
    const types = events.map((e: any) => e.type);
    expect(types.slice(-4)).toEqual(['ExternalKeyUnlinked', 'ExternalKeyLinked', 'AttributesChanged', 'ScimResourceReplaced']);
    expect(events.find((e: any) => e.type === 'AttributesChanged').data).toMatchObject({
      changes: {
        familyName: { from: 'Lovelace', to: 'Byron' },
        email: { from: 'old@example.com', to: 'new@example.com' },
        phone: { from: null, to: '+44 20 7946 0000' },
      },
      source: 'scim',
    });
    expect((await c.req('GET', q('userName eq "old@example.com"'))).body.totalResults).toBe(0);
    expect((await c.req('GET', q('userName eq "new@example.com"'))).body.Resources[0].id).toBe(id);
    // The old name is free again.
    expect((await c.req('POST', '/Users', userBody('old@example.com'))).status).toBe(201);
  });

  it('DELETE (delete mode): 204, then 404 everywhere in SCIM; the account is deleted and the userName reusable', async () => {
    const id = (await c.req('POST', '/Users', userBody('leaver@example.com', { externalId: 'l-1' }))).body.id;
    const del = await c.req('DELETE', `/Users/${id}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    const gone = await c.req('GET', `/Users/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ schemas: [ERROR], status: '404' });
    expect((await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [] })).status).toBe(404);
    expect((await c.req('DELETE', `/Users/${id}`)).status).toBe(404);
    expect((await c.req('GET', q('userName eq "leaver@example.com"'))).body.totalResults).toBe(0);
    const types = (await c.history(id)).map((e: any) => e.type);
    expect(types.slice(-5)).toEqual(['ExternalKeyUnlinked', 'ExternalKeyUnlinked', 'ScimResourceDeleted', 'RoleRevoked', 'AccountDeleted']);
    expect((await c.t.get(`/identities/${id}`)).body.status).toBe('deleted');
    expect((await c.req('POST', '/Users', userBody('leaver@example.com', { externalId: 'l-1' }))).status).toBe(201);
  });

  it('ETags: If-Match with a stale version answers 412 and appends nothing; If-None-Match answers 304', async () => {
    const created = await c.req('POST', '/Users', userBody('etag@example.com'));
    const id = created.body.id;
    const v1 = created.headers.get('etag')!;
    expect(v1).toMatch(/^W\/"\d+"$/);
    const ok = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'CTO' }] }, { 'if-match': v1 });
    expect(ok.status).toBe(200);
    const v2 = ok.headers.get('etag')!;
    expect(v2).toBe(`W/"${Number(/\d+/.exec(v1)![0]) + 2}"`); // AttributesChanged + ScimResourceReplaced
    const before = await c.t.eventCount();
    const stale = await c.req('PUT', `/Users/${id}`, userBody('etag@example.com', { title: 'CEO' }), { 'if-match': v1 });
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ schemas: [ERROR], status: '412' });
    expect((await c.req('DELETE', `/Users/${id}`, undefined, { 'if-match': v1 })).status).toBe(412);
    expect(await c.t.eventCount()).toBe(before);
    const cached = await c.req('GET', `/Users/${id}`, undefined, { 'if-none-match': v2 });
    expect(cached.status).toBe(304);
    expect((await c.req('GET', `/Users/${id}`)).body.title).toBe('CTO');
  });

  it('bearer tokens: missing or wrong tokens get a SCIM 401 with a Bearer challenge', async () => {
    const none = await fetch(`${c.base}/Users`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="scim"');
    expect(await none.json()).toEqual({ schemas: [ERROR], status: '401', detail: 'a bearer credential with scope scim is required' });
    const wrong = await c.req('GET', '/Users', undefined, { authorization: `Bearer ${SCIM_TOKEN}x` });
    expect(wrong.status).toBe(401);
    const basic = await c.req('GET', '/Users', undefined, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    expect(basic.status).toBe(401);
    const first = await c.req('GET', '/ServiceProviderConfig', undefined, { authorization: 'Bearer other-token-0123456789' });
    expect(first.status).toBe(200);
  });

  it('errors use the SCIM Error schema with the right scimType, and append nothing', async () => {
    const before = await c.t.eventCount();
    const badJson = await c.req('POST', '/Users', '{"userName": ');
    expect(badJson.status).toBe(400);
    expect(badJson.headers.get('content-type')).toBe('application/scim+json; charset=utf-8');
    expect(badJson.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidSyntax' });
    const plainJson = await c.req('POST', '/Users', '{"userName": ', { 'content-type': 'application/json' });
    expect(plainJson.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidSyntax' });
    const missing = await c.req('POST', '/Users', { schemas: [USER], name: { givenName: 'x' } });
    expect(missing.body).toEqual({ schemas: [ERROR], status: '400', scimType: 'invalidValue', detail: 'userName is required' });
    const badType = await c.req('POST', '/Users', userBody('t@example.com', { active: 'maybe' }));
    expect(badType.body).toMatchObject({ status: '400', scimType: 'invalidValue', detail: 'active must be a boolean' });
    const twoPrimaries = await c.req('POST', '/Users', userBody('p@example.com', { emails: [{ value: 'a@x', primary: true }, { value: 'b@x', primary: true }] }));
    expect(twoPrimaries.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
    const unknownSchema = await c.req('POST', '/Users', { ...userBody('s@example.com'), schemas: [USER, 'urn:example:unknown'] });
    expect(unknownSchema.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
    const proto = await c.req('POST', '/Users', '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"z","__proto__":{"admin":true}}');
    expect(proto.status).toBe(400);
    expect(({} as any).admin).toBeUndefined();
    const text = await c.req('POST', '/Users', 'userName=x', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body).toMatchObject({ schemas: [ERROR], status: '415' });
    const unknownUser = await c.req('GET', '/Users/3f1c1a2e-0000-4000-8000-000000000000');
    expect(unknownUser.body).toEqual({ schemas: [ERROR], status: '404', detail: 'User 3f1c1a2e-0000-4000-8000-000000000000 not found' });
    const unknownPath = await c.req('GET', '/Widgets');
    expect(unknownPath.body).toEqual({ schemas: [ERROR], status: '404', detail: 'no SCIM endpoint /scim/v2/Widgets' });
    const putCollection = await c.req('PUT', '/Users', userBody('c@example.com'));
    expect(putCollection.status).toBe(405);
    expect(putCollection.body.schemas).toEqual([ERROR]);
    expect(await c.t.eventCount()).toBe(before);
  });

  it('discovery is accurate and read-only', async () => {
    const spc = await c.req('GET', '/ServiceProviderConfig');
    expect(spc.body).toMatchObject({
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true, maxResults: 1000 },
      changePassword: { supported: false },
      sort: { supported: true },
      etag: { supported: true },
      authenticationSchemes: [{ type: 'oauthbearertoken', primary: true }],
    });
    const types = await c.req('GET', '/ResourceTypes');
    expect(types.body.Resources.map((r: any) => [r.id, r.endpoint, r.schema])).toEqual([
      ['User', '/Users', USER],
      ['Group', '/Groups', 'urn:ietf:params:scim:schemas:core:2.0:Group'],
    ]);
    const user = await c.req('GET', `/Schemas/${USER}`);
    const attr = (n: string) => user.body.attributes.find((a: any) => a.name === n);
    expect(attr('userName')).toMatchObject({ required: true, uniqueness: 'server', caseExact: false });
    expect(attr('password')).toMatchObject({ mutability: 'writeOnly', returned: 'never' });
    expect(attr('groups')).toMatchObject({ mutability: 'readOnly', multiValued: true });
    const all = await c.req('GET', '/Schemas');
    expect(all.body.Resources.map((s: any) => s.name)).toEqual(['User', 'EnterpriseUser', 'Group', 'ServiceProviderConfig', 'ResourceType', 'Schema']);
    for (const [method, path] of [
      ['POST', '/ServiceProviderConfig'],
      ['PUT', '/Schemas'],
      ['PATCH', '/ResourceTypes'],
      ['DELETE', `/Schemas/${USER}`],
    ]) {
      const r = await c.req(method, path, method === 'DELETE' ? undefined : {});
      expect([method, path, r.status, r.body.schemas]).toEqual([method, path, 405, [ERROR]]);
    }
  });

  it('DELETE in disable mode disables the account (still in the engine) and hides the SCIM resource', async () => {
    await c.close();
    c = await startScim({ SCIM_DELETE_MODE: 'disable' });
    const id = (await c.req('POST', '/Users', userBody('keep@example.com'))).body.id;
    expect((await c.req('DELETE', `/Users/${id}`)).status).toBe(204);
    expect((await c.req('GET', `/Users/${id}`)).status).toBe(404);
    const identity = (await c.t.get(`/identities/${id}`)).body;
    expect(identity).toMatchObject({ status: 'disabled', disabledReason: 'scim' });
    // Disabling keeps grants (a re-enable restores access); deletion would revoke them.
    expect(identity.heldRoles).toEqual(['employee-basic']);
    const types = (await c.history(id)).map((e: any) => e.type);
    expect(types.slice(-3)).toEqual(['ExternalKeyUnlinked', 'ScimResourceDeleted', 'AccountDisabled']);
    expect(types).not.toContain('AccountDeleted');
  });

  it('without SCIM_TOKENS only an API credential with scope scim opens SCIM', async () => {
    await c.close();
    c = await startScim({ SCIM_TOKENS: '' });
    const r = await c.req('GET', '/Users');
    expect(r.status).toBe(401);
    expect(r.body.detail).toBe('a bearer credential with scope scim is required');
    const okta = await c.t.credential(['scim'], 'okta-provisioning');
    expect((await c.req('GET', '/Users', undefined, { authorization: `Bearer ${okta}` })).status).toBe(200);
    const created = await c.req('POST', '/Users', JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'cred@example.com', externalId: 'okta-cred-1' }), { authorization: `Bearer ${okta}` });
    expect(created.status).toBe(201);
    const events = await c.history(created.body.id);
    expect(events[0].actor).toBe(`credential:${okta.split('_')[1]}`);
  });
});
