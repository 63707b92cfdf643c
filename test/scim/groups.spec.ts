import { GROUP, PATCH, ScimClient, startScim, userBody } from './scim-client';

describe('SCIM Groups: membership grants and revokes a role with source scim-group', () => {
  let c: ScimClient;
  let u1: string;
  let u2: string;
  let u3: string;
  const roleEvents = async (id: string) =>
    (await c.history(id)).filter((e: any) => (e.type === 'RoleGranted' || e.type === 'RoleRevoked') && e.data.source.kind === 'scim-group').map((e: any) => [e.type, e.data.role]);
  const scimRoles = async (id: string) =>
    (await c.t.get(`/identities/${id}`)).body.roles.filter((r: any) => r.source.kind === 'scim-group').map((r: any) => r.role).sort();

  beforeEach(async () => {
    c = await startScim({ SCIM_GROUP_ROLE_MAP: JSON.stringify({ 'Finance Approvers': 'erp-approver' }) });
    u1 = (await c.req('POST', '/Users', userBody('u1@example.com'))).body.id;
    u2 = (await c.req('POST', '/Users', userBody('u2@example.com'))).body.id;
    u3 = (await c.req('POST', '/Users', userBody('u3@example.com'))).body.id;
  });
  afterEach(async () => {
    await c.close();
  });

  it('Okta: create, rename (path-less replace with id), add with display, remove by filter, full replace, delete', async () => {
    const created = await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Engineering', externalId: 'okta-g1', members: [{ value: u1, display: 'u1@example.com' }] });
    expect(created.status).toBe(201);
    const gid = created.body.id;
    expect(created.headers.get('location')).toBe(`${c.base}/Groups/${gid}`);
    expect(created.headers.get('etag')).toBe('W/"0"');
    expect(created.body).toEqual({
      schemas: [GROUP],
      id: gid,
      externalId: 'okta-g1',
      displayName: 'Engineering',
      members: [{ value: u1, $ref: `${c.base}/Users/${u1}`, type: 'User', display: 'u1@example.com' }],
      meta: { resourceType: 'Group', created: '2026-01-05T09:00:00.000Z', lastModified: '2026-01-05T09:00:00.000Z', location: `${c.base}/Groups/${gid}`, version: 'W/"0"' },
    });
    expect(await roleEvents(u1)).toEqual([['RoleGranted', 'Engineering']]);
    const grant = (await c.history(u1)).find((e: any) => e.type === 'RoleGranted' && e.data.source.kind === 'scim-group');
    expect(grant).toMatchObject({ source: 'scim', data: { role: 'Engineering', source: { kind: 'scim-group', groupId: gid } } });
    // The user shows its group (read-only attribute).
    expect((await c.req('GET', `/Users/${u1}`)).body.groups).toEqual([{ value: gid, display: 'Engineering', type: 'direct', $ref: `${c.base}/Groups/${gid}` }]);

    const renamed = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: gid, displayName: 'Platform Engineering' } }] });
    expect(renamed.status).toBe(200);
    expect(renamed.body.displayName).toBe('Platform Engineering');
    expect(await roleEvents(u1)).toEqual([
      ['RoleGranted', 'Engineering'],
      ['RoleRevoked', 'Engineering'],
      ['RoleGranted', 'Platform Engineering'],
    ]);

    const added = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: u2, display: 'u2@example.com' }, { value: '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d' }] }] });
    expect(added.body.members.map((m: any) => m.value)).toEqual([u1, u2]);
    expect(await scimRoles(u2)).toEqual(['Platform Engineering']);

    const removed = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${u1}"]` }] });
    expect(removed.body.members.map((m: any) => m.value)).toEqual([u2]);
    expect(await scimRoles(u1)).toEqual([]);
    expect((await c.history(u1)).pop()).toMatchObject({ type: 'RoleRevoked', data: { role: 'Platform Engineering', reason: 'scim-group' } });

    const replaced = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'members', value: [{ value: u1 }, { value: u3 }] }] });
    expect(replaced.body.members.map((m: any) => m.value).sort()).toEqual([u1, u3].sort());
    expect([await scimRoles(u1), await scimRoles(u2), await scimRoles(u3)]).toEqual([['Platform Engineering'], [], ['Platform Engineering']]);

    // The group's own stream tells the story.
    const groupEvents = await c.t.engine.store.readStream(`scim-group-${gid}`);
    expect(groupEvents.map((e) => e.type)).toEqual(['GroupCreated', 'GroupRenamed', 'GroupMembersAdded', 'GroupMembersRemoved', 'GroupMembersRemoved', 'GroupMembersAdded']);
    expect(groupEvents.every((e) => e.metadata.source === 'scim')).toBe(true);

    expect((await c.req('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expect((await c.req('GET', `/Groups/${gid}`)).status).toBe(404);
    expect([await scimRoles(u1), await scimRoles(u3)]).toEqual([[], []]);
    expect((await c.req('GET', `/Users/${u1}`)).body.groups).toBeUndefined();
  });

  it('Entra ID: members added with Add, removed by value with a null $ref; a configured role name', async () => {
    const gid = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Finance Approvers' })).body.id;
    const add = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: u1 }, { value: u2 }] }] });
    expect(add.status).toBe(200);
    expect(await scimRoles(u1)).toEqual(['erp-approver']);
    const rm = await c.req('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: u1 }] }] });
    expect(rm.body.members.map((m: any) => m.value)).toEqual([u2]);
    expect([await scimRoles(u1), await scimRoles(u2)]).toEqual([[], ['erp-approver']]);
  });

  it('birthright recomputation never touches group roles; deleting a user takes it out of its groups', async () => {
    const gid = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'VPN', members: [{ value: u1 }, { value: u2 }] })).body.id;
    const out = await c.t.engine.commands.execute(u1, [{ kind: 'RecomputeBirthright' }], { metadata: { source: 'test' } });
    expect(out.rejection).toBeUndefined();
    expect(await scimRoles(u1)).toEqual(['VPN']);
    expect((await c.req('DELETE', `/Users/${u2}`)).status).toBe(204);
    const g = await c.req('GET', `/Groups/${gid}`);
    expect(g.body.members.map((m: any) => m.value)).toEqual([u1]);
    const u2Events = (await c.history(u2)).map((e: any) => `${e.type}${e.data.role ? ':' + e.data.role : ''}`);
    expect(u2Events).toContain('RoleRevoked:VPN');
  });

  it('filters on groups: displayName, externalId, members; PUT replaces; If-Match; errors', async () => {
    const a = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Alpha', externalId: 'X1', members: [{ value: u1 }] })).body;
    const b = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Beta', members: [{ value: u1 }, { value: u2 }] })).body;
    const f = async (filter: string) => (await c.req('GET', `/Groups?filter=${encodeURIComponent(filter)}`)).body.Resources.map((g: any) => g.displayName).sort();
    expect(await f('displayName eq "alpha"')).toEqual(['Alpha']);
    expect(await f(`members[value eq "${u2}"]`)).toEqual(['Beta']);
    expect(await f(`members.value eq "${u1}"`)).toEqual(['Alpha', 'Beta']);
    expect(await f('externalId eq "x1"')).toEqual([]);
    expect(await f('displayName sw "B" or externalId pr')).toEqual(['Alpha', 'Beta']);
    const users = await c.req('GET', `/Users?filter=${encodeURIComponent(`groups.value eq "${b.id}"`)}`);
    expect(users.body.Resources.map((u: any) => u.id).sort()).toEqual([u1, u2].sort());
    const noMembers = await c.req('GET', `/Groups?filter=${encodeURIComponent('displayName eq "Beta"')}&excludedAttributes=members`);
    expect(noMembers.body.Resources[0].members).toBeUndefined();

    const put = await c.req('PUT', `/Groups/${a.id}`, { schemas: [GROUP], displayName: 'Alpha 2', members: [{ value: u3 }] }, { 'if-match': a.meta.version });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ displayName: 'Alpha 2', members: [{ value: u3, type: 'User' }] });
    expect(put.body.externalId).toBeUndefined();
    expect(await scimRoles(u3)).toEqual(['Alpha 2']);
    expect((await scimRoles(u1)).sort()).toEqual(['Beta']);
    const before = await c.t.eventCount();
    const stale = await c.req('PATCH', `/Groups/${a.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Z' }] }, { 'if-match': a.meta.version });
    expect(stale.status).toBe(412);
    const noName = await c.req('POST', '/Groups', { schemas: [GROUP], members: [] });
    expect(noName.body).toMatchObject({ status: '400', scimType: 'invalidValue', detail: 'displayName is required' });
    const ro = await c.req('PATCH', `/Groups/${a.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'meta.version', value: 'x' }] });
    expect(ro.body).toMatchObject({ status: '400', scimType: 'mutability' });
    expect(await c.t.eventCount()).toBe(before);
    expect((await c.req('GET', '/Groups/not-a-group')).status).toBe(404);
  });
});
