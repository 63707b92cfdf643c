import { FilterTranslator, parseFilter, rewriteEntraValuePaths, USERS_SQL } from '@idlc/engine';
import { ENTERPRISE, ERROR, ScimClient, SEARCH, startScim, USER, userBody } from './scim-client';

const USERS = USERS_SQL;

describe('SCIM filter translation to SQL', () => {
  const sql = (f: string, d: 'sqlite' | 'postgres' = 'sqlite') => new FilterTranslator(USERS, d).translate(parseFilter(f));

  it('parameterises every value; case-insensitive attributes compare lowercased, case-exact ones as written', () => {
    const a = sql('userName eq "Ada@Example.com" and externalId eq "AbC"');
    expect(a.params).toEqual(['ada@example.com', 'AbC']);
    expect(a.sql).toBe('((u.user_name_lc = ?) AND (u.external_id = ?))');
    const b = sql('title eq "CTO" and emails.value eq "A@X.com"');
    expect(b.sql).toBe(
      '((u.id IN (SELECT v.id FROM scim_user_values v WHERE v.attr = ? AND v.sub = ? AND (v.v_lc = ?))) AND (u.id IN (SELECT v.id FROM scim_user_values v WHERE v.attr = ? AND v.sub = ? AND (v.v_lc = ?))))',
    );
    expect(b.params).toEqual(['title', '', 'cto', 'emails', 'value', 'a@x.com']);
    expect(a.sql).not.toContain('Ada');
    expect((a.sql.match(/\?/g) ?? []).length).toBe(a.params.length);
  });

  it('value paths keep every condition on the same value; Entra\'s `[..].value eq` form is rewritten to one', () => {
    expect(rewriteEntraValuePaths('emails[type eq "work"].value eq "a@x.com" and active eq true')).toBe('emails[(type eq "work") and value eq "a@x.com"] and active eq true');
    expect(rewriteEntraValuePaths('userName eq "a[b].c eq"')).toBe('userName eq "a[b].c eq"');
    const v = sql('emails[type eq "work" and value co "@Example.com"]');
    expect(v.sql).toContain('w3.idx = e1.idx');
    expect(v.params).toEqual(['emails', 'type', 'work', 'value', '%@example.com%']);
  });

  it('escapes LIKE wildcards, uses GLOB for case-exact substring matches on SQLite and LIKE on PostgreSQL', () => {
    expect(sql('title co "50%_off"').params).toEqual(['title', '', '%50\\%\\_off%']);
    expect(sql('externalId sw "A*b"')).toEqual({ sql: '(u.external_id GLOB ?)', params: ['A[*]b*'] });
    expect(sql('externalId sw "A*b"', 'postgres').sql).toContain("LIKE ? ESCAPE '\\'");
    expect(sql('userName gt "m"', 'postgres').sql).toBe('(u.user_name_lc COLLATE "C" > ?)');
    expect(sql('meta.lastModified ge "2026-01-01T00:00:00Z"').params).toEqual([Date.parse('2026-01-01T00:00:00Z')]);
  });

  it('rejects what is not a valid filter with invalidFilter', () => {
    for (const f of ['userName eq', 'nosuch eq "x"', 'active gt true', 'meta.lastModified gt "yesterday"', 'name eq "x"', '__proto__ eq 1', 'emails[value co "x"].__proto__ eq 1']) {
      expect(() => sql(f)).toThrow(expect.objectContaining({ status: 400, scimType: 'invalidFilter' }));
    }
  });
});

describe('SCIM filters, sorting, paging and attribute selection over HTTP', () => {
  let c: ScimClient;
  const ids: Record<string, string> = {};
  const list = async (qs: string) => {
    const r = await c.req('GET', `/Users?${qs}`);
    if (r.status !== 200) throw new Error(`${qs}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const names = async (filter: string, extra = '') => (await list(`filter=${encodeURIComponent(filter)}${extra}`)).Resources.map((u: any) => u.userName).sort();

  beforeAll(async () => {
    c = await startScim();
    const people = [
      userBody('alice@example.com', { externalId: 'EXT-a', title: 'Engineer', emails: [{ value: 'alice@example.com', type: 'work', primary: true }, { value: 'alice@home.org', type: 'home' }], [ENTERPRISE]: { department: 'Engineering', costCenter: '100' }, schemas: [USER, ENTERPRISE] }),
      userBody('bob@example.com', { externalId: 'ext-b', title: 'Sales Manager', emails: [{ value: 'bob@corp.net', type: 'work' }, { value: 'bob@example.com', type: 'home' }], [ENTERPRISE]: { department: 'Sales' }, schemas: [USER, ENTERPRISE] }),
      userBody('carol@example.org', { title: 'Director', active: false, emails: [{ value: 'carol@example.org', type: 'work', primary: true }] }),
      userBody('dave@example.com', { nickName: 'D', emails: undefined }),
    ];
    for (const p of people) {
      c.t.clock.advance(60_000);
      const r = await c.req('POST', '/Users', p);
      if (r.status !== 201) throw new Error(JSON.stringify(r.body));
      ids[p.userName] = r.body.id;
    }
  });
  afterAll(async () => {
    await c.close();
  });

  it('every comparison operator', async () => {
    expect(await names('userName eq "ALICE@example.com"')).toEqual(['alice@example.com']);
    expect(await names('userName ne "alice@example.com"')).toEqual(['bob@example.com', 'carol@example.org', 'dave@example.com']);
    expect(await names('userName co "EXAMPLE.COM"')).toEqual(['alice@example.com', 'bob@example.com', 'dave@example.com']);
    expect(await names('userName sw "b"')).toEqual(['bob@example.com']);
    expect(await names('userName ew ".org"')).toEqual(['carol@example.org']);
    expect(await names('nickName pr')).toEqual(['dave@example.com']);
    expect(await names('userName gt "bob@example.com"')).toEqual(['carol@example.org', 'dave@example.com']);
    expect(await names('userName ge "bob@example.com"')).toEqual(['bob@example.com', 'carol@example.org', 'dave@example.com']);
    expect(await names('userName lt "bob@example.com"')).toEqual(['alice@example.com']);
    expect(await names('userName le "bob@example.com"')).toEqual(['alice@example.com', 'bob@example.com']);
    expect(await names('meta.created gt "2026-01-05T09:02:30Z"')).toEqual(['carol@example.org', 'dave@example.com']);
    expect(await names('meta.lastModified le "2026-01-05T09:01:00Z"')).toEqual(['alice@example.com']);
    expect(await names('active eq false')).toEqual(['carol@example.org']);
    expect(await names('active eq "True"')).toEqual(['alice@example.com', 'bob@example.com', 'dave@example.com']);
  });

  it('case rules per attribute: externalId is case-exact, userName and emails are not', async () => {
    expect(await names('externalId eq "EXT-a"')).toEqual(['alice@example.com']);
    expect(await names('externalId eq "ext-a"')).toEqual([]);
    expect(await names('externalId sw "ext"')).toEqual(['bob@example.com']);
    expect(await names('emails.value eq "BOB@CORP.NET"')).toEqual(['bob@example.com']);
    expect(await names(`id eq "${ids['bob@example.com']}"`)).toEqual(['bob@example.com']);
  });

  it('and, or, not and parentheses; value paths; the enterprise extension by URN', async () => {
    expect(await names('title pr and (userName sw "a" or userName sw "c")')).toEqual(['alice@example.com', 'carol@example.org']);
    expect(await names('not (title pr) or title eq "director"')).toEqual(['carol@example.org', 'dave@example.com']);
    expect(await names('emails[type eq "work" and value co "@example.com"]')).toEqual(['alice@example.com']);
    // Bob has a work email and an @example.com email, but not on the same value.
    expect(await names('emails[type eq "home" and value co "@example.com"]')).toEqual(['bob@example.com']);
    expect(await names('emails[type eq "work"].value eq "bob@corp.net"')).toEqual(['bob@example.com']);
    expect(await names('emails[not (type eq "work")]')).toEqual(['alice@example.com', 'bob@example.com']);
    expect(await names(`${ENTERPRISE}:department eq "engineering"`)).toEqual(['alice@example.com']);
    expect(await names('urn:ietf:params:scim:schemas:core:2.0:User:title co "manager"')).toEqual(['bob@example.com']);
    expect(await names('emails co "home"')).toEqual(['alice@example.com']);
  });

  it('sortBy/sortOrder (unassigned last), startIndex/count paging with totalResults', async () => {
    const byTitle = await list('sortBy=title&sortOrder=descending');
    expect(byTitle.Resources.map((u: any) => u.title ?? null)).toEqual(['Sales Manager', 'Engineer', 'Director', null]);
    const byEmail = await list('sortBy=emails.value');
    expect(byEmail.Resources.map((u: any) => u.userName)).toEqual(['alice@example.com', 'bob@example.com', 'carol@example.org', 'dave@example.com']);
    const page = await list('sortBy=userName&startIndex=2&count=2');
    expect(page).toMatchObject({ totalResults: 4, startIndex: 2, itemsPerPage: 2 });
    expect(page.Resources.map((u: any) => u.userName)).toEqual(['bob@example.com', 'carol@example.org']);
    expect(await list('count=0')).toMatchObject({ totalResults: 4, itemsPerPage: 0, Resources: [] });
    expect((await list('startIndex=0&count=-3')).Resources).toEqual([]);
    expect((await c.req('GET', '/Users?sortOrder=sideways')).body).toMatchObject({ status: '400', scimType: 'invalidValue' });
  });

  it('attributes and excludedAttributes keep schemas and id', async () => {
    const only = await list(`filter=${encodeURIComponent('userName eq "alice@example.com"')}&attributes=userName,emails.value,${ENTERPRISE}:department`);
    expect(only.Resources[0]).toEqual({
      schemas: [USER, ENTERPRISE],
      id: ids['alice@example.com'],
      userName: 'alice@example.com',
      emails: [{ value: 'alice@example.com' }, { value: 'alice@home.org' }],
      [ENTERPRISE]: { department: 'Engineering' },
    });
    const without = (await c.req('GET', `/Users/${ids['alice@example.com']}?excludedAttributes=emails,meta,${ENTERPRISE},name.givenName`)).body;
    expect(without.emails).toBeUndefined();
    expect(without.meta).toBeUndefined();
    expect(without[ENTERPRISE]).toBeUndefined();
    expect(without.schemas).toEqual([USER]);
    expect(without.name).toEqual({ familyName: 'Lovelace' });
    expect(without.id).toBe(ids['alice@example.com']);
  });

  it('POST /.search at the root and per type; a bad filter answers 400 invalidFilter', async () => {
    await c.req('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Searchers' });
    const s = await c.req('POST', '/Users/.search', { schemas: [SEARCH], filter: 'title pr', sortBy: 'userName', attributes: ['userName'], count: 2 });
    expect(s.status).toBe(200);
    expect(s.body.totalResults).toBe(3);
    expect(s.body.Resources).toEqual([
      { schemas: [USER], id: ids['alice@example.com'], userName: 'alice@example.com' },
      { schemas: [USER], id: ids['bob@example.com'], userName: 'bob@example.com' },
    ]);
    const root = await c.req('POST', '/.search', { schemas: [SEARCH], filter: 'displayName eq "Searchers" or userName eq "dave@example.com"', attributes: ['displayName', 'userName'] });
    expect(root.body.totalResults).toBe(2);
    expect(root.body.Resources.map((r: any) => r.userName ?? r.displayName)).toEqual(['dave@example.com', 'Searchers']);
    const bad = await c.req('GET', `/Users?filter=${encodeURIComponent('userName eq')}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidFilter' });
    const badSearch = await c.req('POST', '/Users/.search', { filter: 'userName pr' });
    expect(badSearch.body).toMatchObject({ status: '400', scimType: 'invalidSyntax' });
  });

  it('a lookup by userName, externalId or displayName reads its page in listing order from the index: no sort per request (SQLite query plan of the SQL the service ran)', async () => {
    await c.req('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Planners', externalId: 'grp-plan' });
    const db = c.t.engine.readDb;
    const all = db.all.bind(db);
    const plans: string[] = [];
    db.all = (async (sql: string, params?: unknown[]) => {
      if (/^SELECT [\w., ]+ FROM scim_(users|groups) [ug] WHERE .* ORDER BY /s.test(sql)) plans.push((await all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | '));
      return all(sql, params);
    }) as typeof db.all;
    try {
      for (const [path, filter] of [
        ['/Users', 'userName eq "alice@example.com"'],
        ['/Users', 'externalId eq "ext-1"'],
        ['/Users', 'displayName eq "Alice"'],
        ['/Groups', 'displayName eq "Planners"'],
        ['/Groups', 'externalId eq "grp-plan"'],
      ]) {
        expect((await c.req('GET', `${path}?filter=${encodeURIComponent(filter)}`)).status).toBe(200);
      }
    } finally {
      db.all = all;
    }
    expect(plans).toHaveLength(5);
    for (const p of plans) {
      expect(p).toMatch(/SEARCH [ug] USING (COVERING )?INDEX scim_(users|groups)_\w+_listed/);
      expect(p).not.toContain('TEMP B-TREE');
    }
  });

  it('lookups by userName and by value use indexes (SQLite query plan), not a scan of the users table', async () => {
    const t = new FilterTranslator(USERS, 'sqlite');
    const plan = async (filter: string) => {
      const f = t.translate(parseFilter(filter));
      const rows = await c.t.engine.readDb.all<{ detail: string }>(`EXPLAIN QUERY PLAN SELECT u.id FROM scim_users u WHERE u.visible = 1 AND ${f.sql}`, f.params);
      return rows.map((r) => r.detail).join(' | ');
    };
    expect(await plan('userName eq "alice@example.com"')).toMatch(/SEARCH u USING (COVERING )?INDEX scim_users_user_name_listed/);
    const byValue = await plan('emails.value eq "bob@corp.net"');
    expect(byValue).toMatch(/USING (COVERING )?INDEX scim_user_values_(lc|text)/);
    expect(byValue).toMatch(/SEARCH u USING INTEGER PRIMARY KEY|SEARCH u USING INDEX sqlite_autoindex_scim_users_1/);
  });
});
