import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
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

      // A renamed group shows its new name on its members; a deleted one leaves them.
      const renamed = await c.req('PATCH', `/Groups/${fin}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'displayName', value: 'Finance EMEA' }] });
      expect(renamed.status).toBeLessThan(300);
      expect((await c.req('GET', `/Users/${u1}`)).body.groups).toEqual([{ value: fin, display: 'Finance EMEA', type: 'direct', $ref: ref(fin) }]);
      expect((await c.req('GET', `/Users?filter=${encodeURIComponent('groups.display eq "Finance EMEA"')}`)).body.Resources.map((u: any) => u.id)).toEqual([u1]);
      expect((await c.req('DELETE', `/Groups/${fin}`)).status).toBe(204);
      expect((await c.req('GET', `/Users/${u1}`)).body).not.toHaveProperty('groups');
      expect((await c.req('GET', `/Users?filter=${encodeURIComponent('userName eq "g1@example.com"')}`)).body.Resources[0]).not.toHaveProperty('groups');
    } finally {
      await c.close();
    }
  });

  it('a database written before users carried their groups (scim read model version 1) is rebuilt in the new shape on start', async () => {
    const schema: Record<string, string> = env.EVENT_STORE === 'postgres' ? { DATABASE_SCHEMA: `t_${randomUUID().replace(/-/g, '').slice(0, 12)}` } : {};
    const first = await startScim({ ...env, ...schema });
    const dir = first.t.dir;
    let second: Awaited<ReturnType<typeof startScim>> | undefined;
    try {
      const u = (await first.req('POST', '/Users', userBody('old@example.com'))).body.id;
      const ops = (await first.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Ops', members: [{ value: u }] })).body.id;
      await first.t.settle();
      // What the previous version left: no groups column, and version 1 in its checkpoint.
      await first.t.app.close();
      await first.t.engine.readDb.exec('ALTER TABLE scim_users DROP COLUMN groups');
      await first.t.engine.readDb.run(`UPDATE projection_checkpoints SET version = 1 WHERE name = 'scim'`);
      await first.t.engine.close();

      second = await startScim({ ...env, ...schema, DATA_DIR: dir });
      // A read model left in the old shape makes the runner retry for ever: say so instead of waiting.
      const settled = await Promise.race([second.t.settle().then(() => 'caught up'), new Promise((r) => setTimeout(() => r(`stuck: ${second!.t.engine.projections.error}`), 10_000))]);
      expect(settled).toBe('caught up');
      expect(second.t.engine.projections.status().find((p) => p.name === 'scim')).toMatchObject({ version: 2 });
      expect((await second.req('GET', `/Users/${u}`)).body.groups).toEqual([{ value: ops, display: 'Ops', type: 'direct', $ref: `${second.base}/Groups/${ops}` }]);
      expect((await second.req('GET', `/Users?filter=${encodeURIComponent('groups.value eq "' + ops + '"')}`)).body.totalResults).toBe(1);
    } finally {
      await second?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
