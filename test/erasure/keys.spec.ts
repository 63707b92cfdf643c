import { identityStream } from '@idlc/domain';
import { ConfigError, DataKeyUnavailableError, Engine, loadConfig } from '@idlc/engine';
import { randomBytes, randomUUID } from 'node:crypto';
import { startTestApp, TestApp } from '../support/app';
import { serviceEnv } from '../support/services';
import { dumpDatabase, occurrences, POLICY, strings } from './support';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

const PROBLEM = 'https://idlc.dev/problems/';
const ERASED = '[erased]';
const KEK = randomBytes(32).toString('base64');

const hire = (eventId: string, employeeId: string, attributes: Record<string, string>) => ({ eventId, type: 'hire', employeeId, effectiveDate: '2026-01-05', attributes });
const person = (given: string, family: string, extra: Record<string, string> = {}) => ({
  givenName: given,
  familyName: family,
  email: `${given}.${family}@example.com`.toLowerCase(),
  phone: `+49 30 ${given.length}${family.length}0 1234`,
  department: 'Engineering',
  title: 'Engineer',
  employmentType: 'employee',
  location: 'Berlin',
  ...extra,
});

/** Another engine over the same database (a restarted process, or a second one), without projections. */
async function sibling(t: TestApp, env: Record<string, string> = {}): Promise<Engine> {
  const base: Record<string, string> =
    t.engine.config.eventStore === 'postgres'
      ? { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl!, DATABASE_SCHEMA: t.engine.config.databaseSchema! }
      : { DATA_DIR: t.dir };
  return Engine.open({ config: loadConfig({ ...base, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', WORKER_MODE: 'api', ...env }), clock: t.clock });
}

const keyRow = (t: TestApp, id: string) =>
  t.engine.readDb.get<{ key_material: string | null; destroyed_at: number | null }>('SELECT key_material, destroyed_at FROM identity_data_keys WHERE identity_id = ?', [id]);

it('DATA_KEY_ENCRYPTION_KEY must be 32 bytes of base64', () => {
  for (const bad of ['short', randomBytes(16).toString('base64'), `${KEK.slice(0, -2)}!=`]) {
    expect(() => loadConfig({ DATA_KEY_ENCRYPTION_KEY: bad })).toThrow(ConfigError);
    try {
      loadConfig({ DATA_KEY_ENCRYPTION_KEY: bad });
    } catch (e) {
      expect((e as ConfigError).problems).toEqual(['DATA_KEY_ENCRYPTION_KEY: must be 32 random bytes in base64 (44 characters, e.g. `openssl rand -base64 32`)']);
    }
  }
  expect(loadConfig({ DATA_KEY_ENCRYPTION_KEY: KEK }).dataKeyEncryptionKey).toEqual(Buffer.from(KEK, 'base64'));
});

describe.each(backends)('data keys, legacy plaintext and failures (%s)', (_backend, env) => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
    t = undefined as unknown as TestApp;
  });

  it('DATA_KEY_ENCRYPTION_KEY wraps data keys; keys stored raw before it are wrapped at the next start; a missing or wrong KEK fails loudly', async () => {
    t = await startTestApp(env);
    const early = (await t.hr(hire('h-1', 'E1', person('Wilhelmina', 'Raw')))).body.results[0].identityId;
    expect((await keyRow(t, early))!.key_material).toMatch(/^raw:/);

    const wrapped = await sibling(t, { DATA_KEY_ENCRYPTION_KEY: KEK });
    try {
      // Opening with a KEK wrapped the key stored raw; both read back.
      expect((await keyRow(t, early))!.key_material).toMatch(/^kek:v1:[A-Za-z0-9+/=]+$/);
      const later = randomUUID();
      const out = await wrapped.commands.execute(later, [{ kind: 'Hire', employeeId: 'E2', effectiveAt: '2026-01-05T00:00:00.000Z', attributes: person('Kasimir', 'Wrapped') }], {
        metadata: { source: 'test' },
      });
      expect(out.rejection).toBeUndefined();
      expect((await keyRow(t, later))!.key_material).toMatch(/^kek:v1:/);
      expect(((await wrapped.store.readStream(identityStream(later)))[0].data as any).attributes.givenName).toBe('Kasimir');
      expect(((await wrapped.store.readStream(identityStream(early)))[0].data as any).attributes.givenName).toBe('Wilhelmina');

      // The same database without the KEK, or with another one: that identity's reads fail, naming the cause.
      for (const [name, e] of [
        ['no KEK', {}],
        ['wrong KEK', { DATA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') }],
      ] as const) {
        const other = await sibling(t, e);
        try {
          const err = await other.store.readStream(identityStream(later)).then(
            () => null,
            (x) => x,
          );
          expect([name, err instanceof DataKeyUnavailableError]).toEqual([name, true]);
          expect(err.message).toMatch(name === 'no KEK' ? /DATA_KEY_ENCRYPTION_KEY is not set/ : /does not open with DATA_KEY_ENCRYPTION_KEY/);
        } finally {
          await other.close();
        }
      }
    } finally {
      await wrapped.close();
    }
  });

  it('a ciphertext moved to another identity or another field does not decrypt: that read fails, the chain reports the edit', async () => {
    t = await startTestApp(env);
    const a = (await t.hr(hire('h-a', 'EA', person('Anselm', 'Source')))).body.results[0].identityId;
    const b = (await t.hr(hire('h-b', 'EB', person('Brunhild', 'Target')))).body.results[0].identityId;
    const c = (await t.hr(hire('h-c', 'EC', person('Cordula', 'Bystander')))).body.results[0].identityId;
    const [ra] = await t.engine.rawStore.readStream(identityStream(a), { maxCount: 1 });
    const [rb] = await t.engine.rawStore.readStream(identityStream(b), { maxCount: 1 });
    const rc = (await t.engine.rawStore.readStream(identityStream(c), { maxCount: 1 }))[0];
    // Anselm's email ciphertext pasted into Brunhild's hire; Cordula's phone ciphertext pasted into her own email.
    const forgedB = { ...rb.data, attributes: { ...rb.data.attributes, email: ra.data.attributes.email } };
    const forgedC = { ...rc.data, attributes: { ...rc.data.attributes, email: rc.data.attributes.phone } };
    await t.engine.readDb.run('UPDATE events SET data = ? WHERE position = ?', [JSON.stringify(forgedB), rb.position]);
    await t.engine.readDb.run('UPDATE events SET data = ? WHERE position = ?', [JSON.stringify(forgedC), rc.position]);
    for (const id of [b, c]) {
      const r = await t.get(`/identities/${id}/history`);
      expect([r.status, r.body.type]).toEqual([500, `${PROBLEM}data_key_unavailable`]);
      expect(r.body.detail).toBe(`personal data of identity ${id} cannot be decrypted: value at attributes.email does not authenticate (tampered, or moved from another identity or field)`);
    }
    expect((await t.get(`/identities/${a}/history`)).body.events[0].data.attributes.email).toBe('anselm.source@example.com');
    const verify = await t.get('/audit/verify');
    expect(verify.body.firstBreak).toMatchObject({ streamId: identityStream(b), revision: 0, reason: 'hash_mismatch' });
  });

  it('a legacy identity (plaintext events from before encryption) reads as before; erased, every reader sees markers, read models are scrubbed, the chain verifies', async () => {
    t = await startTestApp(env);
    const legacy = randomUUID();
    const stream = identityStream(legacy);
    const at = '2026-01-05T00:00:00.000Z';
    const attributes = { givenName: 'Octavia', familyName: 'Oldfield', email: 'octavia.oldfield@example.com', department: 'Legal', employmentType: 'employee' };
    await t.engine.rawStore.append(
      stream,
      [
        { type: 'IdentityHired', version: 1, data: { employeeId: 'E-OLD', effectiveAt: at, attributes }, metadata: { source: 'legacy' } },
        { type: 'ExternalKeyLinked', version: 1, data: { key: { kind: 'hr', value: 'E-OLD' } }, metadata: { source: 'legacy' } },
        { type: 'AccountProvisioned', version: 1, data: { source: 'hr', effectiveAt: at }, metadata: { source: 'legacy' } },
      ],
      'no_stream',
      { claims: ['hr:E-OLD'] },
    );
    expect((await t.get(`/identities/${legacy}/history`)).body.events[0].data.attributes).toEqual(attributes);
    expect((await t.post(`/identities/${legacy}/disable`, {})).status).toBe(200);
    const erased = await t.post(`/identities/${legacy}/erase`, { reason: 'legacy request' });
    expect(erased.status).toBe(200);
    expect(erased.body.appended).toEqual(['ExternalKeyUnlinked', 'IdentityErased', 'AccountDeleted']);
    await t.settle();

    const events = (await t.get(`/identities/${legacy}/history`)).body.events;
    expect(events[0].data.attributes).toEqual({ givenName: ERASED, familyName: ERASED, email: ERASED, department: 'Legal', employmentType: 'employee' });
    expect(strings(events).filter((s) => Object.values(attributes).slice(0, 3).includes(s))).toEqual([]);
    expect((await t.get(`/identities/${legacy}`)).body.attributes).toEqual({ givenName: ERASED, familyName: ERASED, email: ERASED, department: 'Legal', employmentType: 'employee' });
    expect(await keyRow(t, legacy)).toEqual({ key_material: null, destroyed_at: t.clock.now().getTime() });
    expect((await t.get('/audit/verify')).body).toMatchObject({ ok: true, unhashed: 3, firstBreak: null });
    // What cannot be done: the plaintext written before encryption stays in the log's rows (rewriting
    // them would break the hash chain). Everything else is clean.
    const dump = await dumpDatabase(t.engine.readDb);
    expect(occurrences(dump, ['Octavia', 'Oldfield', 'octavia.oldfield@example.com'])).toEqual([
      'events: Octavia',
      'events: Oldfield',
      'events: octavia.oldfield@example.com',
    ]);
  });

  it('a crash between the IdentityErased append and the key destruction: the next read finishes the erasure (key, snapshot)', async () => {
    // api mode: nothing reads the store in the background, so the test decides when the next read happens.
    t = await startTestApp({ ...env, WORKER_MODE: 'api', SNAPSHOT_EVERY: '2' });
    const dora = person('Dorothea', 'Crashwell');
    const id = (await t.hr(hire('h-d', 'ED', dora))).body.results[0].identityId;
    await t.hr({ eventId: 't-d', type: 'terminate', employeeId: 'ED', effectiveDate: '2026-01-05', reason: 'resigned' });
    // What the erase endpoint does, stopped right after the append: the process "died" there.
    const dying = await sibling(t, { SNAPSHOT_EVERY: '1000000' });
    try {
      const out = await dying.commands.execute(id, [{ kind: 'EraseIdentity', reason: 'crash', requestedBy: 'admin' }], { metadata: { source: 'admin' } });
      expect(out.events.map((e) => e.type).at(-2)).toBe('IdentityErased');
    } finally {
      await dying.close();
    }
    expect((await keyRow(t, id))!.key_material).toMatch(/^raw:/);
    const snapshot = async () => (await t.engine.readDb.get<{ state: string }>('SELECT state FROM snapshots WHERE stream_id = ?', [identityStream(id)]))?.state ?? '';
    expect(await snapshot()).toContain('Dorothea');

    const events = (await t.get(`/identities/${id}/history`)).body.events;
    expect(events[0].data.attributes).toMatchObject({ givenName: ERASED, email: ERASED, department: 'Engineering' });
    expect(await keyRow(t, id)).toMatchObject({ key_material: null });
    for (let i = 0; i < 100 && (await snapshot()).includes('Dorothea'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await snapshot()).not.toContain('Dorothea');
    expect(JSON.parse(await snapshot()).attributes.givenName).toBe(ERASED);
    await t.settle();
    expect(occurrences(await dumpDatabase(t.engine.readDb), [dora.givenName, dora.familyName, dora.email, dora.phone])).toEqual([]);
  });
});
