import { canonicalJson, identityStream } from '@idlc/domain';
import { GENESIS_HASH, verifyChains } from '@idlc/engine';
import { createHash } from 'node:crypto';
import { GROUP, ScimClient, startScim, userBody } from '../scim/scim-client';
import { TestApp } from '../support/app';
import { serviceEnv } from '../support/services';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

const hire = (eventId: string, employeeId: string, department = 'Engineering') => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Ada', familyName: 'Lovelace', email: `${employeeId}@example.com`, department, employmentType: 'employee', location: 'London' },
});

/** The documented hash, computed independently of the engine's helper. */
const sha = (streamId: string, e: { revision: number; type: string; version: number; data: unknown }, prevHash: string) =>
  createHash('sha256').update(canonicalJson({ streamId, revision: e.revision, type: e.type, version: e.version, data: e.data, prevHash })).digest('hex');

describe.each(backends)('tamper-evident history, verified over HTTP (%s)', (_name, env) => {
  let c: ScimClient;
  let t: TestApp;
  let a: string;
  let b: string;
  let total: number;

  beforeEach(async () => {
    c = await startScim(env);
    t = c.t;
    a = (await t.hr(hire('h-a', 'E1'))).body.results[0].identityId;
    b = (await t.hr(hire('h-b', 'E2', 'Sales'))).body.results[0].identityId;
    t.clock.advance(3600_000);
    expect((await t.hr({ eventId: 'c-a', type: 'change', employeeId: 'E1', effectiveDate: '2026-01-05', attributes: { department: 'Finance' } })).status).toBe(200);
    expect((await t.post(`/identities/${a}/roles`, { role: 'prod-db-readonly' })).status).toBe(200);
    const u = (await c.req('POST', '/Users', userBody('scim.user@example.com'))).body.id;
    expect((await c.req('POST', '/Groups', { schemas: [GROUP], displayName: 'Ops', members: [{ value: u }] })).status).toBe(201);
    total = await t.eventCount();
  });
  afterEach(async () => {
    await c.close();
  });

  // As stored: hashes cover the encrypted personal values, not what readers see.
  const rows = (stream: string) => t.engine.rawStore.readStream(stream);

  it('every identity and group event links to its predecessor; an untouched store verifies clean', async () => {
    const events = await rows(identityStream(a));
    expect(events.length).toBeGreaterThanOrEqual(6);
    let prev = GENESIS_HASH;
    for (const e of events) {
      expect(e.metadata.prevHash).toBe(prev);
      expect(e.metadata.hash).toBe(sha(e.streamId, e, prev));
      prev = e.metadata.hash as string;
    }
    const groupEvents = (await t.engine.rawStore.readAll({ streamPrefix: 'scim-group-' }));
    expect(groupEvents.length).toBeGreaterThanOrEqual(1);
    expect(groupEvents[0].metadata.prevHash).toBe(GENESIS_HASH);
    expect(groupEvents[0].metadata.hash).toBe(sha(groupEvents[0].streamId, groupEvents[0], GENESIS_HASH));

    const all = await t.get('/audit/verify');
    expect(all.status).toBe(200);
    // Every event in this store belongs to an identity or group stream.
    expect(all.body).toEqual({ ok: true, eventsChecked: total, unhashed: 0, lastPosition: expect.any(Number), firstBreak: null });
    // With a tail cache of one stream and tiny pages, forgotten predecessors are re-read: same verdict.
    expect(await verifyChains(t.engine.store, { tailCache: 1, pageSize: 2 })).toEqual(all.body);
    const one = await t.get(`/audit/verify?identity=${a}`);
    expect(one.body).toMatchObject({ ok: true, eventsChecked: events.length, firstBreak: null });
  });

  it('an edited row is reported at its exact stream and revision', async () => {
    const stream = identityStream(a);
    const before = (await rows(stream))[2];
    const forged = { ...before.data, forged: true };
    expect(await t.engine.readDb.run('UPDATE events SET data = ? WHERE stream_id = ? AND revision = ?', [JSON.stringify(forged), stream, 2])).toBe(1);

    const r = await t.get('/audit/verify');
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(false);
    expect(r.body.firstBreak).toEqual({
      streamId: stream,
      revision: 2,
      position: before.position,
      reason: 'hash_mismatch',
      expected: sha(stream, { ...before, data: forged }, before.metadata.prevHash as string),
      found: before.metadata.hash,
    });
    expect((await t.get(`/audit/verify?identity=${a}`)).body.firstBreak).toMatchObject({ streamId: stream, revision: 2, reason: 'hash_mismatch' });
    expect((await verifyChains(t.engine.store, { tailCache: 1, pageSize: 3 })).firstBreak).toEqual(r.body.firstBreak);
    expect((await t.get(`/audit/verify?identity=${b}`)).body).toMatchObject({ ok: true, firstBreak: null });
  });

  it('a forger who also rewrites the edited event\'s hash is caught at the next link', async () => {
    const stream = identityStream(a);
    const events = await rows(stream);
    const e = events[1];
    const data = { ...e.data, forged: true };
    const newHash = sha(stream, { ...e, data }, e.metadata.prevHash as string);
    await t.engine.readDb.run('UPDATE events SET data = ?, metadata = ? WHERE stream_id = ? AND revision = ?', [
      JSON.stringify(data),
      JSON.stringify({ ...e.metadata, hash: newHash }),
      stream,
      1,
    ]);
    const r = await t.get('/audit/verify');
    expect(r.body.firstBreak).toEqual({
      streamId: stream,
      revision: 2,
      position: events[2].position,
      reason: 'prev_hash_mismatch',
      expected: newHash,
      found: e.metadata.hash,
    });
  });

  it('a deleted event is reported as missing before the revision that follows it', async () => {
    const stream = identityStream(b);
    const events = await rows(stream);
    await t.engine.readDb.run('DELETE FROM events WHERE stream_id = ? AND revision = ?', [stream, 1]);
    const r = await t.get(`/audit/verify?identity=${b}`);
    expect(r.body.firstBreak).toEqual({ streamId: stream, revision: 2, position: events[2].position, reason: 'missing_event', expected: null, found: null });
  });

  it('the chain survives a cold cache and extends streams written before chaining existed', async () => {
    // Cold cache: the head hash is read back from the stream's last event.
    t.engine.repository.clear();
    expect((await t.post(`/identities/${b}/roles`, { role: 'vpn' })).status).toBe(200);
    // A legacy stream: events appended without hashes, as before this feature.
    const legacy = '11111111-2222-3333-4444-555555555555';
    const stream = identityStream(legacy);
    // Written before encryption existed: plaintext, as a reader sees them.
    const first = await t.engine.store.readStream(identityStream(a));
    await t.engine.store.append(stream, first.slice(0, 2).map((e) => ({ type: e.type, version: e.version, data: e.data, metadata: { source: 'legacy' } })), 'no_stream');
    expect((await t.post(`/identities/${legacy}/roles`, { role: 'vpn' })).status).toBe(200);
    const events = await rows(stream);
    const link0 = sha(stream, events[0], GENESIS_HASH);
    const link1 = sha(stream, events[1], link0);
    expect(events[2].metadata.prevHash).toBe(link1);
    const r = await t.get('/audit/verify');
    expect(r.body).toMatchObject({ ok: true, unhashed: 2, eventsChecked: (await t.eventCount()), firstBreak: null });
    // Once a stream is chained, an event without a hash is itself a break.
    t.engine.repository.clear();
    expect((await t.post(`/identities/${legacy}/roles`, { role: 'wiki' })).status).toBe(200);
    expect((await t.get(`/audit/verify?identity=${legacy}`)).body).toMatchObject({ ok: true, unhashed: 2, eventsChecked: (await rows(stream)).length });
    const lastRevision = (await rows(stream)).length - 1;
    await t.engine.readDb.run('UPDATE events SET metadata = ? WHERE stream_id = ? AND revision = ?', ['{}', stream, lastRevision]);
    expect((await t.get(`/audit/verify?identity=${legacy}`)).body.firstBreak).toMatchObject({ streamId: stream, revision: lastRevision, reason: 'missing_hash' });
  });

  it('bad input answers with problem+json and appends nothing', async () => {
    const bad = await t.get('/audit/verify?identity=../x');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await t.get('/audit/verify?foo=1')).status).toBe(400);
    const missing = await t.get('/audit/verify?identity=00000000-0000-0000-0000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.type).toBe('https://idlc.dev/problems/identity_not_found');
    expect(await t.eventCount()).toBe(total);
  });
});
