import { identityStream } from '@idlc/domain';
import { LifecyclePublisher, silentLogger } from '@idlc/engine';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestApp } from '../support/app';
import { serviceEnv } from '../support/services';
import { TestOidcIdp } from '../support/test-idp';
import { ENTERPRISE, PATCH, ScimClient, startScim, USER } from '../scim/scim-client';
import { cleanUp, createTopics, readTopic, testKafka, uniqueName } from '../kafka/support/kafka-test';
import { cli, dumpDatabase, masked, occurrences, POLICY, strings } from './support';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

const PROBLEM = 'https://idlc.dev/problems/';
const ERASED = '[erased]';
const DAY = 86400_000;

/** Ada as HR hires her: every personal attribute, plus the non-personal ones that must survive erasure. */
const ADA_HIRE = {
  givenName: 'Augusta',
  familyName: 'Byron-King',
  displayName: 'Augusta Ada King',
  email: 'augusta.king@example.com',
  phone: '+44 20 7946 0187',
  address: '12 St James Square, London SW1Y 4JH',
  managerName: 'Charles Babbage',
  department: 'Engineering',
  title: 'Engineer',
  location: 'London',
  employmentType: 'employee',
  costCenter: 'CC-100',
};
/** A move: department and title (not personal), email and phone (personal). */
const ADA_MOVE = { department: 'Finance', title: 'Analyst', email: 'a.king@finance.example.com', phone: '+44 20 7946 0999' };
/** What her IdP asserts at her first login: a different given name. */
const ADA_SSO_GIVEN_NAME = 'Adaline';
const ADA_VALUES = [
  ...['givenName', 'familyName', 'displayName', 'email', 'phone', 'address', 'managerName'].map((k) => (ADA_HIRE as Record<string, string>)[k]),
  ADA_MOVE.email,
  ADA_MOVE.phone,
  ADA_SSO_GIVEN_NAME,
];

const BOB_HIRE = { givenName: 'Bartholomew', familyName: 'Quigley', email: 'bart.quigley@example.com', phone: '+33 1 70 36 00 00', department: 'Sales', title: 'Account Executive', location: 'Paris', employmentType: 'employee' };

/** Grace as a SCIM client (Okta, Entra ID) provisions her. */
const GRACE = {
  schemas: [USER, ENTERPRISE],
  userName: 'grace.hopper@navy.example.com',
  externalId: 'ext-grace-1906',
  name: { givenName: 'Grace', familyName: 'Hopper', formatted: 'Rear Admiral Grace Hopper' },
  displayName: 'Amazing Grace',
  title: 'Rear Admiral',
  emails: [{ value: 'grace.hopper@navy.example.com', type: 'work', primary: true }],
  phoneNumbers: [{ value: '+1 703 555 0142', type: 'work' }],
  addresses: [{ streetAddress: '1 Cobol Way', locality: 'Arlington', postalCode: '22201-4795', country: 'US', type: 'work' }],
  active: true,
  [ENTERPRISE]: { department: 'Navy', employeeNumber: 'N-1906' },
};
const GRACE_RENAMED = 'Grace Brewster Hopper';
// Values distinctive enough that the database scan cannot find them by chance in hashes, UUIDs or
// ciphertext (a bare 5-digit ZIP code once turned up by chance in the events table).
const GRACE_VALUES = ['grace.hopper@navy.example.com', 'Hopper', 'Rear Admiral Grace Hopper', 'Amazing Grace', '+1 703 555 0142', '1 Cobol Way', '22201-4795', GRACE_RENAMED];

const hr = (eventId: string, type: string, employeeId: string, effectiveDate: string, extra: Record<string, unknown> = {}) => ({ eventId, type, employeeId, effectiveDate, ...extra });

let idp: TestOidcIdp;
let idpDir: string;

beforeAll(async () => {
  idp = await TestOidcIdp.start({ subject: 'sub-ada-1815' });
  idpDir = mkdtempSync(join(tmpdir(), 'idlc-erasure-'));
});
afterAll(async () => {
  await idp?.stop();
  rmSync(idpDir, { recursive: true, force: true });
});

function idpsFile(): string {
  const file = join(idpDir, `idps-${Math.random().toString(36).slice(2)}.json`);
  const mapping = { email: 'email', given_name: 'givenName', family_name: 'familyName', employee_number: 'employeeId' };
  writeFileSync(file, JSON.stringify([idp.config({ id: 'corp-oidc', attributeMapping: mapping, jit: true })]));
  return file;
}

describe.each(backends)('erasure (right to be forgotten) through the HTTP API (%s)', (backend, env) => {
  let c: ScimClient;
  let t: TestApp;
  let ada: string;
  let bob: string;
  let grace: string;
  /** Ada's history just before her erasure, as the audit API returned it. */
  let before: any[];
  let erasedAnswer: any;
  let graceErased: any;
  let eventsBeforeErase: number;

  const history = async (id: string) => {
    const r = await t.get(`/identities/${id}/history`);
    expect(r.status).toBe(200);
    return r.body.events as any[];
  };
  const rawData = async (id: string) =>
    (await t.engine.readDb.all<{ data: string }>('SELECT data FROM events WHERE stream_id = ? ORDER BY revision', [identityStream(id)])).map((r) => r.data).join('\n');
  const cliEnv = (): Record<string, string> =>
    backend === 'postgres'
      ? { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl!, DATABASE_SCHEMA: t.engine.config.databaseSchema!, BIRTHRIGHT_POLICY_FILE: POLICY }
      : { DATA_DIR: t.dir, BIRTHRIGHT_POLICY_FILE: POLICY };

  beforeAll(async () => {
    // Snapshots every 2 events, so the erasure has plaintext snapshots to deal with.
    c = await startScim({ ...env, SSO_IDPS_FILE: idpsFile(), SNAPSHOT_EVERY: '2' });
    t = c.t;

    // Joiners: Ada and Bob from the HR feed (signed webhooks), Grace from a SCIM client.
    const hiredAda = await t.hr(hr('h-ada', 'hire', 'E-ADA', '2026-01-05', { attributes: ADA_HIRE }));
    expect(hiredAda.body.results[0]).toMatchObject({ status: 'applied' });
    ada = hiredAda.body.results[0].identityId;
    bob = (await t.hr(hr('h-bob', 'hire', 'E-BOB', '2026-01-05', { attributes: BOB_HIRE }))).body.results[0].identityId;
    const created = await c.req('POST', '/Users', GRACE);
    expect(created.status).toBe(201);
    grace = created.body.id;

    // Mover: department, title, email and phone change; then her first SSO login links her IdP
    // account to the HR identity (matched on the employee id) and changes her given name.
    t.clock.advance(DAY);
    expect((await t.hr(hr('c-ada', 'change', 'E-ADA', '2026-01-06', { attributes: ADA_MOVE }))).body.results[0].status).toBe('applied');
    const claims = { email: ADA_MOVE.email, given_name: ADA_SSO_GIVEN_NAME, family_name: ADA_HIRE.familyName, employee_number: 'E-ADA' };
    const login = await t.post('/sso/login', { idToken: await idp.signIdToken({ now: t.clock.now(), claims }) });
    expect(login.body).toMatchObject({ identityId: ada, status: 'active', provisioned: false });
    const patched = await c.req('PATCH', `/Users/${grace}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: GRACE_RENAMED }] });
    expect(patched.status).toBe(200);

    // Leavers: Ada is terminated today (disabled at once); Grace is deleted by the SCIM client.
    t.clock.advance(DAY);
    expect((await t.hr(hr('t-ada', 'terminate', 'E-ADA', '2026-01-07', { reason: 'resigned' }))).body.results[0].status).toBe('applied');
    expect((await c.req('DELETE', `/Users/${grace}`)).status).toBe(204);
    await t.settle();

    before = await history(ada);
    eventsBeforeErase = await t.eventCount();
    t.clock.advance(DAY);
    erasedAnswer = await t.post(`/identities/${ada}/erase`, { reason: 'GDPR art. 17 request #42' });
    graceErased = await t.post(`/identities/${grace}/erase`);
    await t.settle();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('no personal value is ever stored in plaintext in the events table', async () => {
    // Checked on Bob, who is not erased: his data is encrypted at rest all the same.
    const raw = await rawData(bob);
    for (const v of [BOB_HIRE.givenName, BOB_HIRE.familyName, BOB_HIRE.email, BOB_HIRE.phone]) expect([v, raw.includes(v)]).toEqual([v, false]);
    expect(raw).toContain('"department":"Sales"');
    expect(raw).toMatch(/"email":"enc:v1:1:[A-Za-z0-9+/=]+"/);
    // And readers see plaintext.
    expect((await history(bob))[0].data.attributes).toEqual(BOB_HIRE);
  });

  it('erasing answers 200 with the erased identity; the account is deleted, its roles revoked and its keys released', async () => {
    expect(erasedAnswer.status).toBe(200);
    expect(erasedAnswer.body.appended).toEqual(['ExternalKeyUnlinked', 'ExternalKeyUnlinked', 'IdentityErased', 'AccountDeleted']);
    expect(erasedAnswer.body.identity).toMatchObject({
      identityId: ada,
      employeeId: 'E-ADA',
      status: 'deleted',
      employment: 'terminated',
      keys: [],
      roles: [],
      erasedAt: '2026-01-08T09:00:00.000Z',
      attributes: {
        givenName: ERASED,
        familyName: ERASED,
        displayName: ERASED,
        email: ERASED,
        phone: ERASED,
        address: ERASED,
        managerName: ERASED,
        department: 'Finance',
        title: 'Analyst',
        location: 'London',
        employmentType: 'employee',
        costCenter: 'CC-100',
      },
    });
    const [erased, deleted] = (await history(ada)).slice(-2);
    // The credential that asked is the requester on record.
    const by = `credential:${t.token.split('_')[1]}`;
    expect(erased).toMatchObject({ type: 'IdentityErased', version: 1, source: 'admin', actor: by, data: { reason: 'GDPR art. 17 request #42', requestedBy: by } });
    expect(deleted).toMatchObject({ type: 'AccountDeleted', data: { reason: 'erasure', source: 'admin' } });
    // Released claims: the employee id, the IdP subject and the SCIM userName belong to nobody now.
    expect(await t.engine.store.lookupKey('hr:E-ADA')).toBeNull();
    expect(await t.engine.store.lookupKey(`idp:${idp.issuer}|sub-ada-1815`)).toBeNull();
    expect(await t.engine.store.lookupKey(`scim-username:${GRACE.userName}`)).toBeNull();
    expect(await t.engine.store.lookupKey('scim-external:ext-grace-1906')).toBeNull();
  });

  it('erasing again answers the same and appends nothing', async () => {
    const count = await t.eventCount();
    const again = await t.post(`/identities/${ada}/erase`, { reason: 'asked twice' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...erasedAnswer.body, appended: [] });
    expect(await t.eventCount()).toBe(count);
  });

  it('the history replays with [erased] for every personal value; types, times, roles, hashes and other attributes stay', async () => {
    const after = await history(ada);
    const personal = new Set(ADA_VALUES);
    // Exactly the known personal values became the marker; every other field of every event is as it was.
    expect(after.slice(0, before.length)).toEqual(before.map((e) => ({ ...e, data: masked(e.data, personal) })));
    expect(strings(after).filter((s) => ADA_VALUES.includes(s))).toEqual([]);
    expect(after[0]).toMatchObject({ type: 'IdentityHired', data: { employeeId: 'E-ADA', attributes: masked(ADA_HIRE, personal) } });
    expect(after[0].data.attributes).toMatchObject({ email: ERASED, department: 'Engineering', costCenter: 'CC-100' });
    const move = after.find((e) => e.type === 'AttributesChanged' && e.data.source === 'hr');
    expect(move.data.changes).toEqual({
      department: { from: 'Engineering', to: 'Finance' },
      title: { from: 'Engineer', to: 'Analyst' },
      email: { from: ERASED, to: ERASED },
      phone: { from: ERASED, to: ERASED },
    });
    const sso = after.find((e) => e.type === 'AttributesChanged' && e.data.source === 'sso');
    expect(sso.data.changes).toEqual({ givenName: { from: ERASED, to: ERASED } });
    // Roles stay replayable: every grant and revocation with its source and time.
    const roleEvents = (events: any[]) => events.filter((e) => e.type === 'RoleGranted' || e.type === 'RoleRevoked').map((e) => [e.type, e.data, e.recordedAt]);
    expect(roleEvents(after)).toEqual(roleEvents(before));
    expect(roleEvents(after).length).toBeGreaterThanOrEqual(6);

    // State as of an instant before the erasure: roles and non-personal attributes as they were, personal ones erased.
    const past = await t.get(`/identities/${ada}/state?at=${encodeURIComponent('2026-01-06T12:00:00.000Z')}`);
    expect(past.status).toBe(200);
    expect(past.body.identity.status).toBe('active');
    expect(past.body.identity.heldRoles).toEqual(['employee-basic', 'erp-finance', 'office-access']);
    expect(past.body.identity.attributes).toEqual({ ...(masked(ADA_HIRE, personal) as object), ...ADA_MOVE, email: ERASED, phone: ERASED, givenName: ERASED });
  });

  it('nothing in the whole database (events, claims, snapshots, read models) holds an erased value; Bob is untouched', async () => {
    const dump = await dumpDatabase(t.engine.readDb);
    expect(dump.has('snapshots')).toBe(true);
    expect(JSON.parse(dump.get('snapshots')!).some((r: any) => r.stream_id === identityStream(ada))).toBe(true);
    expect(occurrences(dump, [...ADA_VALUES, ...GRACE_VALUES])).toEqual([]);
    // Bob: unchanged everywhere readers look.
    const bobNow = await t.get(`/identities/${bob}`);
    expect(bobNow.body.attributes).toEqual(BOB_HIRE);
    expect(bobNow.body.erasedAt).toBeNull();
    expect((await history(bob))[0].data.attributes).toEqual(BOB_HIRE);
    expect((await t.get(`/identities?email=${encodeURIComponent(BOB_HIRE.email)}`)).body.items.map((i: any) => i.identityId)).toEqual([bob]);
    expect((await t.get(`/identities?email=${encodeURIComponent(ADA_MOVE.email)}`)).body.items).toEqual([]);
  });

  it('a SCIM user erased: the SCIM resource is gone, its history keeps only non-personal values', async () => {
    expect((await c.req('GET', `/Users/${grace}`)).status).toBe(404);
    const found = await c.req('GET', `/Users?filter=${encodeURIComponent(`userName eq "${GRACE.userName}"`)}`);
    expect(found.body.totalResults).toBe(0);
    const events = await history(grace);
    expect(strings(events).filter((s) => GRACE_VALUES.includes(s))).toEqual([]);
    expect(events[0]).toMatchObject({ type: 'ExternalKeyLinked', data: { key: { kind: 'scim-username', value: ERASED } } });
    const written = events.find((e) => e.type === 'ScimResourceReplaced');
    expect(written.data.resource).toMatchObject({
      userName: ERASED,
      externalId: 'ext-grace-1906',
      name: { givenName: ERASED, familyName: ERASED, formatted: ERASED },
      displayName: ERASED,
      title: 'Rear Admiral',
      emails: [{ value: ERASED, type: 'work', primary: true }],
      phoneNumbers: [{ value: ERASED, type: 'work' }],
      addresses: [{ streetAddress: ERASED, locality: 'Arlington', postalCode: ERASED, country: 'US', type: 'work' }],
      [ENTERPRISE]: { department: 'Navy', employeeNumber: 'N-1906' },
    });
    // The SCIM DELETE had already deleted the account and released its keys: only the erasure is appended.
    expect(graceErased.status).toBe(200);
    expect(graceErased.body.appended).toEqual(['IdentityErased']);
    expect(events.map((e) => e.type).slice(-2)).toEqual(['AccountDeleted', 'IdentityErased']);
    expect(events.filter((e) => e.type === 'ExternalKeyUnlinked').map((e) => e.data.key)).toEqual([
      { kind: 'scim-username', value: ERASED },
      { kind: 'scim-external', value: 'ext-grace-1906' },
    ]);
    // The userName is free again: a new SCIM user may take it (a new identity, nothing inherited).
    const reused = await c.req('POST', '/Users', { schemas: [USER], userName: GRACE.userName, name: { givenName: 'Grace', familyName: 'Other' } });
    expect(reused.status).toBe(201);
    expect(reused.body.id).not.toBe(grace);
  });

  it('the hash chain still verifies after the keys are destroyed, over HTTP and with idlc verify', async () => {
    const all = await t.get('/audit/verify');
    expect(all.body).toMatchObject({ ok: true, firstBreak: null, unhashed: 0 });
    expect(all.body.eventsChecked).toBe(await t.eventCount());
    expect((await t.get(`/audit/verify?identity=${ada}`)).body).toMatchObject({ ok: true, eventsChecked: before.length + 4, firstBreak: null });
    const r = cli(['verify', '--identity', ada], cliEnv());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, eventsChecked: before.length + 4, firstBreak: null });
  });

  it('the key table keeps a tombstone: no key material, the instant it was destroyed; other keys untouched', async () => {
    const rows = await t.engine.readDb.all<{ identity_id: string; key_material: string | null; destroyed_at: number | null }>(
      'SELECT identity_id, key_material, destroyed_at FROM identity_data_keys WHERE identity_id IN (?, ?, ?)',
      [ada, bob, grace],
    );
    const byId = new Map(rows.map((r) => [r.identity_id, r]));
    expect(byId.get(ada)).toEqual({ identity_id: ada, key_material: null, destroyed_at: Date.parse('2026-01-08T09:00:00.000Z') });
    expect(byId.get(grace)).toMatchObject({ key_material: null, destroyed_at: Date.parse('2026-01-08T09:00:00.000Z') });
    expect(byId.get(bob)!.key_material).toMatch(/^raw:[A-Za-z0-9+/]{43}=$/);
    expect(byId.get(bob)!.destroyed_at).toBeNull();
  });

  it('the read model shows markers, and idlc export --identity and idlc state --at (CLI) show them for every personal value', async () => {
    const got = await t.get(`/identities/${ada}`);
    expect(got.body).toMatchObject({ status: 'deleted', erasedAt: '2026-01-08T09:00:00.000Z', attributes: erasedAnswer.body.identity.attributes });
    const r = cli(['export', '--identity', ada, '--format', 'jsonl'], cliEnv());
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.position, l.type, l.hash])).toEqual((await history(ada)).map((e) => [e.position, e.type, e.hash]));
    expect(strings(lines).filter((s) => ADA_VALUES.includes(s))).toEqual([]);
    expect(lines[0].data.attributes).toMatchObject({ givenName: ERASED, email: ERASED, department: 'Engineering' });
    const state = cli(['state', '--identity', ada, '--at', '2026-01-06T12:00:00.000Z'], cliEnv());
    expect(state.code).toBe(0);
    expect(JSON.parse(state.stdout).identity.attributes).toMatchObject({ givenName: ERASED, email: ERASED, phone: ERASED, department: 'Finance', title: 'Analyst' });
    const http = await t.get(`/audit/export?identity=${ada}&format=jsonl`);
    expect(http.status).toBe(200);
    expect(http.body).toBe(r.stdout);
  });

  it('erasing an enabled identity is refused with 409 problem+json and appends nothing; bad requests too', async () => {
    const count = await t.eventCount();
    const r = await t.post(`/identities/${bob}/erase`, { reason: 'too early' });
    expect(r.status).toBe(409);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body).toMatchObject({ type: `${PROBLEM}account_active`, status: 409 });
    expect(r.body.detail).toBe(`identity ${bob} has an active account: disable or terminate it before erasing its personal data`);
    expect((await t.post('/identities/00000000-0000-0000-0000-000000000000/erase')).status).toBe(404);
    const bad = await t.post(`/identities/${bob}/erase`, { reason: 42 });
    expect([bad.status, bad.body.type]).toEqual([400, `${PROBLEM}validation_failed`]);
    expect((await t.post(`/identities/${bob}/erase`, { reason: 'x'.repeat(501) })).status).toBe(400);
    expect(await t.eventCount()).toBe(count);
    // Later commands on an erased identity are refused the same way, and append nothing.
    const grant = await t.post(`/identities/${ada}/roles`, { role: 'wiki' });
    expect([grant.status, grant.body.type]).toEqual([409, `${PROBLEM}erased`]);
    expect(await t.eventCount()).toBe(count);
  });

  it('HR after an erasure: the employee id is free, a change is refused as unknown, a hire starts a new identity', async () => {
    const change = await t.hr(hr('c-ada-2', 'change', 'E-ADA', '2026-01-08', { attributes: { title: 'Director' } }));
    expect([change.status, change.body.type]).toEqual([404, `${PROBLEM}unknown_employee`]);
    // A replay of an HR event applied before the erasure is still recognised as a duplicate.
    expect((await t.hr(hr('h-ada', 'hire', 'E-ADA', '2026-01-05', { attributes: ADA_HIRE }))).body.results[0]).toMatchObject({ status: 'duplicate', identityId: ada });
    const rehired = await t.hr(hr('h-ada-2', 'hire', 'E-ADA', '2026-01-08', { attributes: { department: 'Engineering', employmentType: 'employee' } }));
    expect(rehired.body.results[0].status).toBe('applied');
    expect(rehired.body.results[0].identityId).not.toBe(ada);
  });

  it('the known-user SSO login hot path touches no key and encrypts or decrypts nothing', async () => {
    const claims = { email: BOB_HIRE.email, given_name: BOB_HIRE.givenName, family_name: BOB_HIRE.familyName, employee_number: 'E-BOB' };
    const token = (sub: string) => idp.signIdToken({ now: t.clock.now(), claims: { ...claims, sub } });
    expect((await t.post('/sso/login', { idToken: await token('sub-bob') })).body).toMatchObject({ identityId: bob, provisioned: false });
    const cipher = t.engine.store.cipher;
    const counts = () => ({ lookups: t.engine.dataKeys.lookups, encrypted: cipher.encrypted, decrypted: cipher.decrypted });
    await t.settle();
    const at = counts();
    const events = await t.eventCount();
    for (let i = 0; i < 3; i++) {
      // Past the login record interval, so every one of them appends.
      t.clock.advance(10 * 60_000);
      expect((await t.post('/sso/login', { idToken: await token('sub-bob') })).status).toBe(200);
    }
    expect(await t.eventCount()).toBe(events + 3);
    expect(counts()).toEqual(at);
    await t.settle();
  });

  it('a data key lost without an erasure fails that identity loudly (500 problem) and nobody else', async () => {
    const row = await t.engine.readDb.get<{ key_material: string; created_at: number }>('SELECT key_material, created_at FROM identity_data_keys WHERE identity_id = ?', [bob]);
    await t.engine.readDb.run('DELETE FROM identity_data_keys WHERE identity_id = ?', [bob]);
    t.engine.dataKeys.evict(bob);
    const errors: string[] = [];
    const cipher = t.engine.store.cipher;
    const onError = cipher.onError;
    cipher.onError = (id) => errors.push(id);
    try {
      const r = await t.get(`/identities/${bob}/history`);
      expect(r.status).toBe(500);
      expect(r.body).toMatchObject({ type: `${PROBLEM}data_key_unavailable`, status: 500 });
      expect(r.body.detail).toContain(bob);
      expect((await t.get(`/identities/${ada}/history`)).status).toBe(200);
      // A read across identities keeps going: Bob's values stay encrypted (reported), the others are readable.
      const all = await t.engine.store.readAll({ maxCount: 10_000 });
      expect(errors).toEqual([bob]);
      const bobHired = all.find((e) => e.streamId === identityStream(bob) && e.type === 'IdentityHired')!;
      expect(bobHired.data.attributes.email).toMatch(/^enc:v1:1:/);
      expect(bobHired.data.attributes.department).toBe('Sales');
      const adaHired = all.find((e) => e.streamId === identityStream(ada) && e.type === 'IdentityHired')!;
      expect(adaHired.data.attributes.email).toBe(ERASED);
    } finally {
      cipher.onError = onError;
      await t.engine.readDb.run('INSERT INTO identity_data_keys (identity_id, key_version, key_material, created_at) VALUES (?, 1, ?, ?)', [bob, row!.key_material, row!.created_at]);
      t.engine.dataKeys.evict(bob);
    }
    expect((await history(bob))[0].data.attributes).toEqual(BOB_HIRE);
  });

  (brokers && backend === 'sqlite' ? it : it.skip)('republishing the history to Kafka carries the markers, never the values', async () => {
    const kafka = testKafka(brokers!);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topic = uniqueName('erasure-republish');
      await createTopics(admin, [topic]);
      // A new topic gets the whole history from position zero, as a republish after an erasure would.
      const publisher = new LifecyclePublisher(kafka, t.engine.store, t.engine.readDb, { topic }, silentLogger);
      await publisher.start();
      await publisher.caughtUp();
      await publisher.stop();
      const messages = await readTopic(kafka, topic);
      expect(messages.length).toBe(await t.eventCount());
      const adas = messages.filter((m) => m.key === ada).map((m) => JSON.parse(m.value!.toString()));
      expect(adas.map((m) => m.type)).toEqual((await history(ada)).map((e) => e.type));
      expect(strings(adas).filter((s) => ADA_VALUES.includes(s))).toEqual([]);
      expect(adas[0].data.attributes).toMatchObject({ givenName: ERASED, email: ERASED, department: 'Engineering' });
      const text = messages.map((m) => m.value!.toString()).join('\n');
      for (const v of ADA_VALUES) expect([v, text.includes(v)]).toEqual([v, false]);
      expect(text).toContain(BOB_HIRE.email);
    } finally {
      await cleanUp(admin);
      await admin.disconnect();
    }
  });

  it('idlc projections:rebuild yields the same read models, with the markers', async () => {
    const dump = async () => ({
      identities: await t.engine.readDb.all('SELECT * FROM identities ORDER BY identity_id'),
      timeline: await t.engine.readDb.all('SELECT * FROM audit_timeline ORDER BY position'),
      roles: await t.engine.readDb.all('SELECT * FROM role_assignments ORDER BY identity_id, role, source_key, granted_position'),
      scim: await t.engine.readDb.all('SELECT * FROM scim_users ORDER BY id'),
      keys: await t.engine.readDb.all('SELECT * FROM identity_keys ORDER BY key'),
    });
    await t.settle();
    const live = await dump();
    // The running server stops projecting while the operator rebuilds from another process.
    await t.engine.projections.stop();
    const r = cli(['projections:rebuild'], cliEnv());
    expect(r.code).toBe(0);
    const rebuilt = await dump();
    expect(rebuilt).toEqual(live);
    const row = rebuilt.identities.find((x: any) => x.identity_id === ada) as any;
    expect(JSON.parse(row.state).attributes).toEqual(erasedAnswer.body.identity.attributes);
    expect(row.display_name).toBe(ERASED);
    expect(row.email_lc).toBe(ERASED);
    expect(occurrences(await dumpDatabase(t.engine.readDb), ADA_VALUES)).toEqual([]);
  });
});
