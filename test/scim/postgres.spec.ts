import { FilterTranslator, GROUPS_SQL, parseFilter, ScimProjection, USERS_SQL } from '@idlc/engine';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { describeIf, serviceEnv } from '../support/services';

const url = serviceEnv('SCIM read models on PostgreSQL', 'DATABASE_URL');

/** The SCIM read models and every filter shape, run on PostgreSQL through the same `?` SQL. */
describeIf(url)('SCIM read models and filter SQL on PostgreSQL', () => {
  const schema = `scim_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  let db: PostgresDatabase;
  beforeAll(async () => {
    const admin = new PostgresDatabase({ connectionString: url! });
    await admin.exec(`CREATE SCHEMA ${schema}`);
    await admin.close();
    db = new PostgresDatabase({ connectionString: url!, schema });
    await db.exec(new ScimProjection().ddl('postgres'));
    const users = [
      ['u1', 'Alice@Example.com', 'EXT-a', 1, 1000],
      ['u2', 'bob@example.com', 'ext-b', 0, 2000],
    ] as const;
    for (const [id, name, ext, active, at] of users) {
      await db.run(
        `INSERT INTO scim_users (id, visible, user_name, user_name_lc, external_id, display_name_lc, active, created_at, updated_at, revision, doc, state) VALUES (?, 1, ?, ?, ?, NULL, ?, ?, ?, 3, '{}', '{}')`,
        [id, name, name.toLowerCase(), ext, active, at, at],
      );
    }
    const values = [
      ['u1', 'emails', 0, 'value', 'alice@example.com', 1],
      ['u1', 'emails', 0, 'type', 'work', 1],
      ['u2', 'emails', 0, 'value', 'bob@example.com', 0],
      ['u2', 'emails', 0, 'type', 'home', 0],
      ['u2', 'emails', 1, 'value', 'b@corp.net', 0],
      ['u2', 'emails', 1, 'type', 'work', 0],
      ['u2', 'title', 0, '', '50%_off Manager', 0],
    ] as const;
    for (const [id, attr, idx, sub, v, primary] of values) {
      await db.run('INSERT INTO scim_user_values (id, attr, idx, sub, v_text, v_lc, v_num, is_primary) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)', [id, attr, idx, sub, v, v.toLowerCase(), primary]);
    }
    await db.run(`INSERT INTO scim_groups (id, visible, display_name, display_name_lc, external_id, created_at, updated_at, revision) VALUES ('g1', 1, 'Ops', 'ops', NULL, 1, 1, 0)`);
  });
  afterAll(async () => {
    await db?.close();
    const admin = new PostgresDatabase({ connectionString: url! });
    await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
    await admin.close();
  });

  const ids = async (filter: string, sortBy?: string) => {
    const t = new FilterTranslator(USERS_SQL, 'postgres');
    const f = t.translate(parseFilter(filter));
    const s = sortBy ? t.sortExpr(sortBy) : { sql: 'u.id', params: [] };
    const rows = await db.all<{ id: string }>(`SELECT u.id FROM scim_users u WHERE u.visible = 1 AND ${f.sql} ORDER BY ${s.sql}, u.id`, [...f.params, ...s.params]);
    return rows.map((r) => r.id);
  };

  it('runs every operator with the same semantics as on SQLite', async () => {
    expect(await ids('userName eq "ALICE@example.com"')).toEqual(['u1']);
    expect(await ids('userName ne "alice@example.com"')).toEqual(['u2']);
    expect(await ids('userName sw "B" and active eq false')).toEqual(['u2']);
    expect(await ids('externalId eq "ext-a"')).toEqual([]);
    expect(await ids('externalId sw "EXT"')).toEqual(['u1']);
    expect(await ids('externalId co "t-"')).toEqual(['u2']); // case-exact: EXT-a has T-
    expect(await ids('title co "50%_"')).toEqual(['u2']);
    expect(await ids('title co "50%x"')).toEqual([]);
    expect(await ids('userName gt "b"')).toEqual(['u2']);
    expect(await ids('meta.created ge "1970-01-01T00:00:02Z"')).toEqual(['u2']);
    expect(await ids('emails[type eq "work" and value ew "example.com"]')).toEqual(['u1']);
    expect(await ids('emails[type eq "work"].value eq "B@CORP.NET"')).toEqual(['u2']);
    expect(await ids('not (title pr) or emails.value eq "bob@example.com"')).toEqual(['u1', 'u2']);
    expect(await ids('userName pr', 'emails.value')).toEqual(['u1', 'u2']);
  });

  it('group filters', async () => {
    const t = new FilterTranslator(GROUPS_SQL, 'postgres');
    const f = t.translate(parseFilter('displayName eq "OPS" and meta.lastModified le "2026-01-01T00:00:00Z"'));
    expect(await db.all(`SELECT g.id FROM scim_groups g WHERE ${f.sql}`, f.params)).toEqual([{ id: 'g1' }]);
  });
});
