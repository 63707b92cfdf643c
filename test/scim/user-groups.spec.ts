import { GROUP, startScim, userBody } from './scim-client';
import { serviceEnv } from '../support/services';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', READ_MODEL_STORE: 'postgres', DATABASE_URL: pgUrl }]);

/** A user's read-only `groups` (from the group streams) on every read path, the same on each read-model store. */
describe.each(backends)('SCIM Users carry their groups on %s', (_name, env) => {
  it('GET by id, userName eq and a full list show every group; a user in none has no groups attribute', async () => {
    const c = await startScim(env);
    try {
      const u1 = (await c.req('POST', '/Users', userBody('g1@example.com'))).body.id;
      const u2 = (await c.req('POST', '/Users', userBody('g2@example.com'))).body.id;
      const ops = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Ops', members: [{ value: u1 }] })).body.id;
      const fin = (await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Finance', members: [{ value: u1 }] })).body.id;
      const ref = (id: string) => `${c.base}/Groups/${id}`;
      const expected = expect.arrayContaining([
        { value: ops, display: 'Ops', type: 'direct', $ref: ref(ops) },
        { value: fin, display: 'Finance', type: 'direct', $ref: ref(fin) },
      ]);

      const byId = (await c.req('GET', `/Users/${u1}`)).body;
      expect(byId.groups).toHaveLength(2);
      expect(byId.groups).toEqual(expected);

      const filtered = (await c.req('GET', `/Users?filter=${encodeURIComponent('userName eq "g1@example.com"')}`)).body;
      expect(filtered.totalResults).toBe(1);
      expect(filtered.Resources[0].groups).toEqual(byId.groups);

      const all = (await c.req('GET', '/Users?count=10')).body.Resources;
      expect(all.find((u: any) => u.id === u1).groups).toEqual(byId.groups);
      expect(all.find((u: any) => u.id === u2)).not.toHaveProperty('groups');
      expect((await c.req('GET', `/Users/${u2}`)).body).not.toHaveProperty('groups');

      // Leaving a group shows at once on the next read.
      const left = await c.req('PATCH', `/Groups/${ops}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove', path: `members[value eq "${u1}"]` }] });
      expect(left.status).toBeLessThan(300);
      expect((await c.req('GET', `/Users/${u1}`)).body.groups).toEqual([{ value: fin, display: 'Finance', type: 'direct', $ref: ref(fin) }]);
    } finally {
      await c.close();
    }
  });
});
