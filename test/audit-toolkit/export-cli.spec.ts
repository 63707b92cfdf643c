import { identityStream } from '@idlc/domain';
import { join, resolve } from 'node:path';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';
import { runCli } from '../support/cli';
import { serviceEnv } from '../support/services';

const ROOT = resolve(__dirname, '../..');
const POLICY = resolve(ROOT, 'config/birthright.yaml');

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, Record<string, string>][] = [['sqlite', {}]];
if (pgUrl) backends.push(['postgres', { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl }]);

/** The CLI on the running server's store: its SQLite file, or its PostgreSQL schema. */
function cli(args: string[], t: TestApp) {
  const pg = t.engine.config.eventStore === 'postgres';
  return runCli(args, {
    ...(pg ? { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl!, DATABASE_SCHEMA: t.engine.config.databaseSchema! } : {}),
    DATA_DIR: t.dir,
    BIRTHRIGHT_POLICY_FILE: POLICY,
    HR_WEBHOOK_SECRETS: HR_SECRET,
  });
}

const hire = (eventId: string, employeeId: string, department: string) => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Grace', familyName: 'Hopper', email: `${employeeId}@example.com`, department, employmentType: 'employee', location: 'London' },
});

/** A small CSV parser (quoted fields, doubled quotes, CRLF rows) to read exports back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') (f += '"'), i++;
      else if (ch === '"') q = false;
      else f += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') row.push(f), (f = '');
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(f), rows.push(row), (row = []), (f = ''), i++;
    } else f += ch;
  }
  return rows;
}

/**
 * One store populated through the HTTP API: Ada hired into Engineering at T0, moved to Finance at
 * T1 (+1h); Bob hired into Sales at T1; a manual role for Ada at T2 (+2h); 200 more people hired in
 * one batch at T3 (+3h), so an export of everything spans more than one page of 1,000 events.
 */
describe.each(backends)('auditor toolkit: exports, state and access report over HTTP and the CLI (%s)', (_name, env) => {
  let t: TestApp;
  let ada: string;
  let bob: string;
  const T0 = '2026-01-05T09:00:00.000Z';
  const T1 = '2026-01-05T10:00:00.000Z';
  const T2 = '2026-01-05T11:00:00.000Z';
  const T3 = '2026-01-05T12:00:00.000Z';
  let bulk: string[];

  beforeAll(async () => {
    t = await startTestApp(env);
    ada = (await t.hr(hire('h-ada', 'A1', 'Engineering'))).body.results[0].identityId;
    t.clock.advance(3600_000);
    await t.hr({ eventId: 'c-ada', type: 'change', employeeId: 'A1', effectiveDate: '2026-01-05', attributes: { department: 'Finance' } });
    bob = (await t.hr(hire('h-bob', 'B1', 'Sales'))).body.results[0].identityId;
    t.clock.advance(3600_000);
    expect((await t.post(`/identities/${ada}/roles`, { role: 'prod-db-readonly' })).status).toBe(200);
    t.clock.advance(3600_000);
    const batch = await t.hr({ events: Array.from({ length: 200 }, (_, i) => hire(`h-bulk-${i}`, `K${i}`, 'Sales')) });
    expect(batch.body.summary.applied).toBe(200);
    bulk = batch.body.results.map((r: { identityId: string }) => r.identityId);
    await t.settle();
  });
  afterAll(() => t?.close());

  /** Every stored event, read page by page (readAll returns at most 1,000). */
  const all = async () => {
    const out = [];
    for (let from = 0; ; ) {
      const page = await t.engine.store.readAll({ fromPosition: from, maxCount: 500 });
      out.push(...page);
      if (page.length < 500) return out;
      from = page[page.length - 1].position;
    }
  };

  describe('HTTP', () => {
    it('GET /audit/export streams one identity as JSON lines, with hashes and who caused each event', async () => {
      const res = await t.getText(`/audit/export?identity=${ada}&format=jsonl`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const lines = res.text.trimEnd().split('\n').map((l) => JSON.parse(l));
      const stored = await t.engine.store.readStream(identityStream(ada));
      expect(lines).toEqual(
        stored.map((e) => ({
          position: e.position,
          streamId: e.streamId,
          revision: e.revision,
          recordedAt: e.recordedAt.toISOString(),
          type: e.type,
          version: e.version,
          source: e.metadata.source ?? null,
          actor: e.metadata.actor ?? null,
          correlationId: e.metadata.correlationId ?? null,
          causationId: e.metadata.causationId ?? null,
          prevHash: e.metadata.prevHash,
          hash: e.metadata.hash,
          data: e.data,
        })),
      );
      expect(lines.at(-1).data.role).toBe('prod-db-readonly');
    });

    it('GET /audit/export as CSV over a recordedAt window', async () => {
      const res = await t.getText(`/audit/export?format=csv&from=${encodeURIComponent(T1)}&to=${encodeURIComponent(T1)}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      const rows = parseCsv(res.text);
      expect(rows[0]).toEqual(['position', 'streamId', 'revision', 'recordedAt', 'type', 'version', 'source', 'actor', 'correlationId', 'causationId', 'prevHash', 'hash', 'data']);
      const expected = (await all()).filter((e) => e.recordedAt.toISOString() === T1);
      expect(expected.length).toBeGreaterThan(2);
      expect(rows.slice(1).map((r) => [Number(r[0]), r[1], r[3], r[11], JSON.parse(r[12])])).toEqual(
        expected.map((e) => [e.position, e.streamId, T1, e.metadata.hash, e.data]),
      );
    });

    it('bad export parameters answer 400/404 problem+json', async () => {
      for (const q of ['format=xml', 'from=yesterday', `from=${T2}&to=${T0}`, 'identity=..%2F', 'what=1']) {
        const r = await t.get(`/audit/export?${q}`);
        expect([q, r.status, r.headers.get('content-type')]).toEqual([q, 400, expect.stringMatching(/problem\+json/)]);
      }
      expect((await t.get('/audit/export?identity=00000000-0000-0000-0000-000000000000')).status).toBe(404);
    });
  });

  describe('CLI (run as a subprocess on the same data directory)', () => {
    it('idlc verify reports a clean store, then the exact tampered row with exit code 2', async () => {
      const clean = cli(['verify'], t);
      expect(clean.code).toBe(0);
      const events = await all();
      expect(JSON.parse(clean.stdout)).toEqual({ ok: true, eventsChecked: events.length, unhashed: 0, lastPosition: events.at(-1)!.position, firstBreak: null });
      const bobOnly = cli(['verify', '--identity', bob], t);
      expect(JSON.parse(bobOnly.stdout)).toMatchObject({ ok: true, eventsChecked: (await t.engine.store.readStream(identityStream(bob))).length });

      const target = (await t.engine.store.readStream(identityStream(bob)))[1];
      const original = JSON.stringify(target.data);
      await t.engine.readDb.run('UPDATE events SET data = ? WHERE position = ?', [JSON.stringify({ ...target.data, role: 'domain-admin' }), target.position]);
      try {
        const broken = cli(['verify'], t);
        expect(broken.code).toBe(2);
        expect(JSON.parse(broken.stdout).firstBreak).toEqual({
          streamId: identityStream(bob),
          revision: 1,
          position: target.position,
          reason: 'hash_mismatch',
          expected: expect.stringMatching(/^[0-9a-f]{64}$/),
          found: target.metadata.hash,
        });
      } finally {
        await t.engine.readDb.run('UPDATE events SET data = ? WHERE position = ?', [original, target.position]);
      }
      expect(cli(['verify', '--identity', 'nope-0000'], t).code).toBe(3);
    });

    it('idlc export --all --format jsonl writes every event to stdout, progress to stderr', async () => {
      const r = cli(['export', '--all', '--format', 'jsonl'], t);
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.position, l.streamId, l.revision, l.hash])).toEqual((await all()).map((e) => [e.position, e.streamId, e.revision, e.metadata.hash]));
      expect(r.stderr).toMatch(/exporting/);
    });

    it('idlc export --identity --format csv --from/--to matches the HTTP export byte for byte', async () => {
      const r = cli(['export', '--identity', ada, '--format', 'csv', '--from', T1, '--to', T2], t);
      expect(r.code).toBe(0);
      const http = (await t.getText(`/audit/export?identity=${ada}&format=csv&from=${encodeURIComponent(T1)}&to=${encodeURIComponent(T2)}`)).text;
      expect(r.stdout).toBe(http);
      const rows = parseCsv(r.stdout).slice(1);
      expect(rows.map((x) => x[3])).toEqual((await t.engine.store.readStream(identityStream(ada))).filter((e) => e.recordedAt.toISOString() >= T1).map((e) => e.recordedAt.toISOString()));
      expect(rows.length).toBeGreaterThan(0);
    });

    it('idlc export refuses bad arguments with exit code 64 and writes nothing to stdout', () => {
      for (const args of [['export'], ['export', '--all', '--identity', ada], ['export', '--all', '--format', 'xml'], ['export', '--all', '--from', 'soon']]) {
        const r = cli(args, t);
        expect([args.join(' '), r.code, r.stdout]).toEqual([args.join(' '), 64, '']);
      }
    });

    it('idlc state --at replays the identity as it was at the instant', () => {
      const before = JSON.parse(cli(['state', '--identity', ada, '--at', T0], t).stdout);
      expect(before).toMatchObject({ at: T0, existed: true, heldRoles: ['employee-basic', 'github-developer', 'jira-user', 'office-access'] });
      expect(before.identity.attributes.department).toBe('Engineering');
      const after = JSON.parse(cli(['state', '--identity', ada, '--at', T2], t).stdout);
      expect(after.heldRoles).toEqual(['employee-basic', 'erp-finance', 'office-access', 'prod-db-readonly']);
      expect(JSON.parse(cli(['state', '--identity', ada, '--at', '2026-01-01T00:00:00Z'], t).stdout)).toEqual({ at: '2026-01-01T00:00:00.000Z', existed: false, identity: null });
      expect(cli(['state', '--identity', ada, '--at', 'later'], t).code).toBe(64);
    });

    it('idlc access-report --at lists who held which role at that instant', async () => {
      const report = (at: string) => {
        const r = cli(['access-report', '--at', at], t);
        expect(r.code).toBe(0);
        return JSON.parse(r.stdout).assignments.map((a: any) => `${a.employeeId}:${a.role}:${a.source.kind}`);
      };
      expect(report(T0)).toEqual(['A1:employee-basic:birthright', 'A1:github-developer:birthright', 'A1:jira-user:birthright', 'A1:office-access:birthright'].sort());
      const later = report(T2);
      const byEmployee = (p: string) => later.filter((x: string) => x.startsWith(p));
      expect(byEmployee('A1:')).toEqual(['A1:employee-basic:birthright', 'A1:erp-finance:birthright', 'A1:office-access:birthright', 'A1:prod-db-readonly:manual']);
      expect(byEmployee('B1:')).toEqual(['B1:crm-user:birthright', 'B1:employee-basic:birthright', 'B1:office-access:birthright']);
      expect(later.length).toBe(7);
    });

    it('idlc export equals GET /audit/export byte for byte, and the stored events, for each scope, format and window', async () => {
      const events = await all();
      expect(events.length).toBeGreaterThan(1000);
      const cases: { identity?: () => string; format: 'jsonl' | 'csv'; from?: string; to?: string }[] = [
        { format: 'csv', from: T1, to: T2 },
        { format: 'jsonl', from: T3 },
        { format: 'csv', to: T1 },
        { identity: () => ada, format: 'jsonl', from: T1, to: T2 },
        { identity: () => ada, format: 'csv' },
        { identity: () => ada, format: 'jsonl', to: T0 },
        { identity: () => bulk[199], format: 'csv', from: T3 },
      ];
      for (const c of cases) {
        const identity = c.identity?.();
        const args = ['export', ...(identity ? ['--identity', identity] : ['--all']), '--format', c.format];
        const query = new URLSearchParams({ format: c.format, ...(identity ? { identity } : {}) });
        if (c.from) args.push('--from', c.from), query.set('from', c.from);
        if (c.to) args.push('--to', c.to), query.set('to', c.to);
        const label = args.join(' ');
        const r = cli(args, t);
        expect([label, r.code]).toEqual([label, 0]);
        const http = await t.getText(`/audit/export?${query}`);
        expect([label, http.status, r.stdout === http.text]).toEqual([label, 200, true]);

        const expected = events.filter(
          (e) =>
            (!identity || e.streamId === identityStream(identity)) &&
            (!c.from || e.recordedAt.toISOString() >= c.from) &&
            (!c.to || e.recordedAt.toISOString() <= c.to),
        );
        expect(expected.length).toBeGreaterThan(0);
        const got =
          c.format === 'jsonl'
            ? r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l)).map((x) => [x.position, x.streamId, x.recordedAt, x.hash])
            : parseCsv(r.stdout).slice(1).map((x) => [Number(x[0]), x[1], x[3], x[11]]);
        expect([label, got]).toEqual([label, expected.map((e) => [e.position, e.streamId, e.recordedAt.toISOString(), e.metadata.hash])]);
      }
    });
  });
});
