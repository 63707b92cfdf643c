import { applyPatch, normalizeResource, parsePatchBody, PATCH_OP, USER_SCHEMA } from '@idlc/engine';
import { ENTERPRISE, ERROR, PATCH, ScimClient, startScim, USER, userBody } from './scim-client';

const base = () =>
  normalizeResource(USER_SCHEMA, {
    schemas: [USER],
    userName: 'ada@example.com',
    name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
    emails: [
      { value: 'ada@example.com', type: 'work', primary: true },
      { value: 'ada@home.org', type: 'home' },
    ],
    roles: [{ value: 'analyst', type: 'x-random-type' }],
  }).doc;
const patch = (ops: unknown[], doc = base()) => normalizeResource(USER_SCHEMA, applyPatch(USER_SCHEMA, doc, parsePatchBody({ schemas: [PATCH_OP], Operations: ops }, PATCH_OP))).doc;

describe('SCIM PATCH semantics (RFC 7644 3.5.2) and client quirks', () => {
  it('add, replace and remove with a path, on simple, complex and multi-valued attributes', () => {
    const d = patch([
      { op: 'add', path: 'nickName', value: 'Countess' },
      { op: 'replace', path: 'name.givenName', value: 'Augusta' },
      { op: 'add', path: 'emails', value: [{ value: 'ada@work.example', type: 'other', primary: true }] },
      { op: 'remove', path: 'name.formatted' },
      { op: 'add', path: 'name', value: { middleName: 'King' } },
    ]);
    expect(d.nickName).toBe('Countess');
    expect(d.name).toEqual({ givenName: 'Augusta', familyName: 'Lovelace', middleName: 'King' });
    // A new primary value takes primary away from the others.
    expect(d.emails).toEqual([
      { value: 'ada@example.com', type: 'work' },
      { value: 'ada@home.org', type: 'home' },
      { value: 'ada@work.example', type: 'other', primary: true },
    ]);
    expect(patch([{ op: 'replace', path: 'emails', value: [{ value: 'only@x.org' }] }]).emails).toEqual([{ value: 'only@x.org' }]);
    expect(patch([{ op: 'remove', path: 'emails' }]).emails).toBeUndefined();
  });

  it('value-filter paths select, change and remove values; replace on no match of an eq filter adds the value (Entra)', () => {
    expect(patch([{ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@example.com' }]).emails).toEqual([
      { value: 'new@example.com', type: 'work', primary: true },
      { value: 'ada@home.org', type: 'home' },
    ]);
    expect(patch([{ op: 'remove', path: 'emails[type eq "HOME"]' }]).emails).toEqual([{ value: 'ada@example.com', type: 'work', primary: true }]);
    expect(patch([{ op: 'remove', path: 'emails[value ew ".org"].type' }]).emails).toEqual([
      { value: 'ada@example.com', type: 'work', primary: true },
      { value: 'ada@home.org' },
    ]);
    expect(patch([{ op: 'add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' }]).phoneNumbers).toEqual([{ type: 'mobile', value: '+1 555 0100' }]);
    expect(() => patch([{ op: 'replace', path: 'emails[value co "zzz"]', value: { display: 'x' } }])).toThrow(expect.objectContaining({ status: 400, scimType: 'noTarget' }));
  });

  it('Entra ID: capitalised ops, "False" strings, dotted and URN keys in a path-less replace', () => {
    const d = patch([
      {
        op: 'Replace',
        value: {
          active: 'False',
          'name.familyName': 'Byron',
          [`${ENTERPRISE}:department`]: 'Research',
          [`${ENTERPRISE}:manager`]: { value: 'm-1' },
          'urn:ietf:params:scim:schemas:core:2.0:User:title': 'Countess',
        },
      },
      { op: 'Add', path: 'emails[type eq "work"].value', value: 'ada@lab.example' },
    ]);
    expect(d.active).toBe(false);
    expect((d.name as any).familyName).toBe('Byron');
    expect(d[ENTERPRISE]).toEqual({ department: 'Research', manager: { value: 'm-1' } });
    expect(d.title).toBe('Countess');
    expect((d.emails as any[])[0].value).toBe('ada@lab.example');
    expect(d.schemas).toEqual([USER, ENTERPRISE]);
    expect(patch([{ op: 'replace', value: { [ENTERPRISE]: { costCenter: 'CC-9' } } }])[ENTERPRISE]).toEqual({ costCenter: 'CC-9' });
    expect(patch([{ op: 'remove', path: ENTERPRISE }], patch([{ op: 'add', path: `${ENTERPRISE}:division`, value: 'D' }]))[ENTERPRISE]).toBeUndefined();
    expect(parsePatchBody({ schemas: [PATCH_OP], Operations: [] }, PATCH_OP)).toEqual([]);
  });

  it('read-only attributes cannot be patched by path; in a path-less value they are ignored (Okta sends id)', () => {
    expect(() => patch([{ op: 'replace', path: 'groups', value: [] }])).toThrow(expect.objectContaining({ status: 400, scimType: 'mutability' }));
    expect(() => patch([{ op: 'replace', path: 'meta.created', value: 'x' }])).toThrow(expect.objectContaining({ scimType: 'mutability' }));
    expect(patch([{ op: 'replace', value: { id: 'other', meta: {}, nickName: 'N' } }]).nickName).toBe('N');
  });

  it('guards every path against __proto__, constructor and prototype', () => {
    const paths = ['__proto__', '__proto__.polluted', 'constructor.prototype.polluted', 'name.__proto__', 'emails[value eq "x"].constructor', `${ENTERPRISE}:prototype`, 'emails[__proto__ eq "x"]'];
    for (const path of paths) {
      expect(() => patch([{ op: 'add', path, value: { polluted: 'yes' } }])).toThrow(expect.objectContaining({ status: 400 }));
    }
    expect(() => patch([{ op: 'add', value: JSON.parse('{"__proto__": {"polluted": "yes"}}') }])).toThrow(expect.objectContaining({ scimType: 'invalidPath' }));
    expect(() => patch([{ op: 'add', value: { 'constructor.prototype.polluted': 'yes' } }])).toThrow(expect.objectContaining({ scimType: 'invalidPath' }));
    expect(() => patch([{ op: 'add', path: 'name', value: JSON.parse('{"__proto__": {"polluted": "yes"}}') }])).toThrow(expect.objectContaining({ status: 400 }));
    expect(({} as any).polluted).toBeUndefined();
    expect((Object.prototype as any).polluted).toBeUndefined();
  });

  it('malformed operations are refused with the right scimType', () => {
    const bad = (body: unknown) => {
      try {
        parsePatchBody(body, PATCH_OP);
      } catch (e) {
        return (e as any).scimType;
      }
      return 'accepted';
    };
    expect(bad({ Operations: [] })).toBe('invalidSyntax');
    expect(bad({ schemas: [PATCH_OP], Operations: [{ op: 'move', path: 'x' }] })).toBe('invalidSyntax');
    expect(bad({ schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'x' }] })).toBe('invalidValue');
    expect(bad({ schemas: [PATCH_OP], Operations: [{ op: 'add', path: 3, value: 1 }] })).toBe('invalidPath');
    expect(() => patch([{ op: 'remove' }])).toThrow(expect.objectContaining({ scimType: 'noTarget' }));
    expect(() => patch([{ op: 'add', path: 'nosuch', value: 1 }])).toThrow(expect.objectContaining({ scimType: 'invalidPath' }));
    expect(() => patch([{ op: 'remove', path: 'userName' }])).toThrow(expect.objectContaining({ scimType: 'invalidValue' }));
  });
});

describe('SCIM PATCH over HTTP, as Entra ID sends it', () => {
  let c: ScimClient;
  beforeAll(async () => {
    c = await startScim();
  });
  afterAll(async () => {
    await c.close();
  });

  it('Entra provisioning: connection test, create, validator PATCH with empty Operations, attribute updates, soft delete', async () => {
    // The connection test filters for a random userName and expects an empty list.
    const probe = await c.req('GET', `/Users?filter=${encodeURIComponent('userName eq "8d2b2f0e-93d7-4a5b-9b0b-2b5e7d1f6c1a"')}`);
    expect(probe.status).toBe(200);
    expect(probe.body.totalResults).toBe(0);
    // POST with read-only meta and empty roles.
    const created = await c.req('POST', '/Users', {
      ...userBody('alan@contoso.com', { externalId: 'alan', roles: [], meta: { resourceType: 'User' } }),
      [ENTERPRISE]: { department: 'Engineering' },
      schemas: [USER, ENTERPRISE],
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect(created.body.roles).toBeUndefined();
    const before = await c.t.eventCount();
    const empty = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [] }, { 'content-type': 'application/json' });
    expect(empty.status).toBe(200);
    expect(empty.body.meta.version).toBe(created.body.meta.version);
    expect(await c.t.eventCount()).toBe(before);

    const upd = await c.req('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'alan.turing@contoso.com' },
        { op: 'Replace', value: { 'name.givenName': 'Alan', [`${ENTERPRISE}:department`]: 'Research', displayName: 'Alan Turing' } },
        { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+44 7700 900000' },
      ],
    });
    expect(upd.status).toBe(200);
    expect(upd.body).toMatchObject({
      name: { givenName: 'Alan', familyName: 'Lovelace' },
      displayName: 'Alan Turing',
      emails: [{ value: 'alan.turing@contoso.com', type: 'work', primary: true }],
      phoneNumbers: [{ type: 'mobile', value: '+44 7700 900000' }],
      [ENTERPRISE]: { department: 'Research' },
    });
    const changed = (await c.history(id)).filter((e: any) => e.type === 'AttributesChanged').pop();
    expect(changed.data.changes).toEqual({
      givenName: { from: 'Ada', to: 'Alan' },
      displayName: { from: null, to: 'Alan Turing' },
      email: { from: 'alan@contoso.com', to: 'alan.turing@contoso.com' },
      phone: { from: null, to: '+44 7700 900000' },
      department: { from: 'Engineering', to: 'Research' },
    });
    expect(changed.source).toBe('scim');
    // Birthright followed the department change.
    const roles = (await c.t.get(`/identities/${id}`)).body.heldRoles;
    expect(roles).not.toContain('github-developer');

    const off = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(off.body.active).toBe(false);
    expect((await c.history(id)).pop()).toMatchObject({ type: 'AccountDisabled', data: { reason: 'scim', source: 'scim' } });

    const proto = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: '__proto__.admin', value: true }] });
    expect(proto.status).toBe(400);
    expect(proto.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidPath' });
    const mut = await c.req('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'id', value: 'x' }] });
    expect(mut.body).toMatchObject({ status: '400', scimType: 'mutability' });
    expect(({} as any).admin).toBeUndefined();
  });
});
