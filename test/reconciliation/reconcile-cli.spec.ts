import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceEnv } from '../support/services';
import { cleanup, cli, restart, Scale, Seeded, seed, writeJson } from './scenario';

const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');

/** 10,000 people in the snapshot: 290 old + 9,700 recent + 2 terminated leavers + 8 never hired. */
const FULL: Scale = {
  old: 300,
  oldLoggedIn: 90,
  titleDrift: 10,
  costCenterDrift: 5,
  oldOrphans: 10,
  recent: 9750,
  recentOrphans: 50,
  deptDrift: 100,
  terminatedInHr: 20,
  missing: 8,
};

const SMALL: Scale = {
  old: 30,
  oldLoggedIn: 9,
  titleDrift: 2,
  costCenterDrift: 2,
  oldOrphans: 3,
  recent: 470,
  recentOrphans: 5,
  deptDrift: 10,
  terminatedInHr: 4,
  missing: 6,
};

interface Expected {
  records: number;
  scanned: number;
  enabled: number;
  counts: Record<string, number>;
}

const cases: [string, Scale, Record<string, string>, Expected][] = [
  [
    'sqlite, 10,000-person snapshot',
    FULL,
    {},
    // scanned: 10,050 HR hires + 5 leavers + 1 future joiner + 2 JIT + 1 SCIM.
    // enabled: all but the 5 leavers and the future joiner.
    { records: 10_000, scanned: 10_059, enabled: 10_053, counts: { orphans: 63, ghosts: 200, drift: 115, driftedAttributes: 116, missing: 8, terminatedButEnabled: 20 } },
  ],
];
if (pgUrl) {
  cases.push([
    'postgres, 500-person snapshot',
    SMALL,
    { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl },
    { records: 500, scanned: 509, enabled: 503, counts: { orphans: 11, ghosts: 18, drift: 14, driftedAttributes: 15, missing: 6, terminatedButEnabled: 4 } },
  ]);
}

describe.each(cases)('idlc reconcile --hr-snapshot over data made through the HTTP API (%s)', (_name, scale, env, expected) => {
  let s: Seeded;
  let work: string;
  let csv: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'idlc-recon-'));
    csv = join(work, 'hr.csv');
    s = await seed(scale, env, csv);
  }, 120_000);
  afterAll(async () => {
    await cleanup(s);
    rmSync(work, { recursive: true, force: true });
  });

  const id = (employeeId: string) => s.identityOf.get(employeeId)!;
  const json = (args: string[]) => {
    const r = cli(['reconcile', '--format', 'json', ...args], s);
    if (r.code !== 0 && r.code !== 2) throw new Error(`exit ${r.code}: ${r.stderr}`);
    return { code: r.code, report: JSON.parse(r.stdout), stderr: r.stderr };
  };

  it('a dry run reports exact counts and the expected items, changes nothing and exits 2', () => {
    const { code, report } = json(['--hr-snapshot', csv]);
    expect(code).toBe(2);
    expect(report.mode).toBe('dry-run');
    expect(report.applied).toBeNull();
    expect(report.refused).toBeNull();
    expect(report.accountsEnabled).toBe(expected.enabled);
    expect(report.reportVersion).toBe(1);
    expect(report.snapshot).toEqual({
      file: csv,
      format: 'csv',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      records: expected.records,
      attributes: ['givenName', 'familyName', 'email', 'department', 'title', 'location', 'costCenter', 'employmentType', 'organization'],
      hasStatus: true,
      ignoredColumns: ['hireDate'],
    });
    expect(report.identitiesScanned).toBe(expected.scanned);
    expect(report.counts).toEqual(expected.counts);
    const r = s.ranges;

    // Orphans: HR identities left out of the snapshot, then the two JIT and the SCIM accounts.
    expect(report.orphans.map((o: any) => o.employeeId ?? o.identityId)).toEqual([
      ...[...r.oldOrphans, ...r.recentOrphans].sort(),
      ...[...s.jitIdentities, s.scimIdentity].sort(),
    ]);
    const last = r.oldOrphans.at(-1)!;
    expect(report.orphans.find((o: any) => o.employeeId === last)).toEqual({
      identityId: id(last),
      employeeId: last,
      reason: 'not-in-snapshot',
      linkedBy: ['hr'],
      email: `${last.toLowerCase()}@example.com`,
      displayName: `Given${last} Family${last}`,
      provisionedAt: new Date(s.base - 50 * 86_400_000).toISOString(),
      lastLoginAt: null,
    });
    const noLink = report.orphans.filter((o: any) => o.reason === 'no-hr-link');
    expect(noLink.map((o: any) => [o.identityId, o.employeeId, o.linkedBy]).sort()).toEqual(
      [
        [s.jitIdentities[0], null, ['sso']],
        [s.jitIdentities[1], null, ['sso']],
        [s.scimIdentity, null, ['scim']],
      ].sort(),
    );

    // Ghosts: old cohort, in HR, never logged in; 50 days by the real clock the CLI runs on.
    expect(report.ghosts.map((g: any) => g.employeeId)).toEqual(r.ghosts);
    expect(report.ghosts[0]).toEqual({
      identityId: id(r.ghosts[0]),
      employeeId: r.ghosts[0],
      email: `${r.ghosts[0].toLowerCase()}@example.com`,
      displayName: `Given${r.ghosts[0]} Family${r.ghosts[0]}`,
      provisionedAt: new Date(s.base - 50 * 86_400_000).toISOString(),
      daysSinceProvisioned: 50,
    });

    // Drift: a title SSO changed, an empty costCenter in HR, departments (and one location) HR changed.
    const drift = new Map(report.drift.map((d: any) => [d.employeeId, d.differences]));
    expect([...drift.keys()]).toEqual([...r.titleDrift, ...r.costCenterDrift, ...r.deptDrift].sort());
    expect(drift.get(r.titleDrift[0])).toEqual([{ attribute: 'title', engine: 'Principal Engineer', snapshot: 'Engineer' }]);
    expect(drift.get(r.costCenterDrift[0])).toEqual([{ attribute: 'costCenter', engine: 'CC-100', snapshot: null }]);
    expect(drift.get(r.deptDrift[0])).toEqual([
      { attribute: 'department', engine: 'Engineering', snapshot: 'Finance' },
      { attribute: 'location', engine: 'London', snapshot: 'Paris' },
    ]);
    expect(drift.get(r.deptDrift[1])).toEqual([{ attribute: 'department', engine: 'Engineering', snapshot: 'Finance' }]);

    // Missing: never hired, named by their line in the file (header on line 1).
    const firstMissingLine = expected.records - r.missing.length + 2;
    expect(report.missing).toEqual(
      r.missing.map((m, i) => ({ employeeId: m, where: `line ${firstMissingLine + i}`, status: 'active', reason: 'no-identity', identityId: null })),
    );
    expect(report.terminatedButEnabled.map((x: any) => [x.employeeId, x.identityId, x.employment])).toEqual(
      r.terminatedInHr.map((e) => [e, id(e), 'active']),
    );
  });

  it('the same snapshot as JSON gives the same findings', () => {
    const file = join(work, 'hr.json');
    writeJson(file, s.snapshot);
    const fromCsv = json(['--hr-snapshot', csv]).report;
    const fromJson = json(['--hr-snapshot', file]).report;
    expect(fromJson.snapshot).toMatchObject({ format: 'json', records: expected.records, hasStatus: true, ignoredColumns: [] });
    for (const k of ['counts', 'orphans', 'ghosts', 'drift', 'terminatedButEnabled'] as const) expect([k, fromJson[k]]).toEqual([k, fromCsv[k]]);
    expect(fromJson.missing.map((m: any) => m.where)).toEqual(s.ranges.missing.map((_, i) => `record ${expected.records - s.ranges.missing.length + i + 1}`));
    // From stdin ("-"), the format is taken from the first character.
    const piped = cli(['reconcile', '--format', 'json', '--hr-snapshot', '-'], s, readFileSync(file, 'utf8'));
    expect(piped.code).toBe(2);
    const fromStdin = JSON.parse(piped.stdout);
    expect(fromStdin.snapshot).toMatchObject({ file: null, format: 'json', sha256: fromJson.snapshot.sha256 });
    expect(fromStdin.orphans).toEqual(fromCsv.orphans);
  });

  it('the human report summarises each category, and --out writes it to a file', () => {
    const r = cli(['reconcile', '--hr-snapshot', csv, '--limit', '3'], s);
    expect(r.code).toBe(2);
    const c = expected.counts;
    expect(r.stdout).toMatch(new RegExp(`^  orphans +${c.orphans} `, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^  ghosts +${c.ghosts} `, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^  drift +${c.drift} +attributes differ from HR \\(${c.driftedAttributes} attribute values\\)`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^  terminated but enabled +${c.terminatedButEnabled} `, 'm'));
    expect(r.stdout).toContain(`ORPHANS (${c.orphans})`);
    expect(r.stdout).toContain(`  … ${c.ghosts - 3} more (--limit 0 or --format json for every item)`);
    expect(r.stdout).toContain('dry run: nothing was changed');
    expect(r.stderr).toMatch(/comparing/);

    const out = join(work, 'report.json');
    const w = cli(['reconcile', '--hr-snapshot', csv, '--format', 'json', '--out', out], s);
    expect([w.code, w.stdout]).toEqual([2, '']);
    expect(w.stderr).toContain(`report written to ${out}: orphans ${c.orphans}, ghosts ${c.ghosts}, drift ${c.drift}, missing ${c.missing}`);
    expect(JSON.parse(readFileSync(out, 'utf8')).counts).toEqual(c);
  });

  it('--apply disables exactly the orphans through the command path; running it again appends nothing', async () => {
    const before = json(['--hr-snapshot', csv]).report;
    const orphanIds: string[] = before.orphans.map((o: any) => o.identityId);
    let events: number;
    {
      const t = await restart(s);
      try {
        events = await t.eventCount();
      } finally {
        await t.stop();
      }
    }

    // One orphan more than the limit allows: refused as a whole, nothing changed (checked by the count below).
    const limited = cli(['reconcile', '--hr-snapshot', csv, '--apply', '--max-disable', String(orphanIds.length - 1), '--format', 'json'], s);
    expect(limited.code).toBe(5);
    expect(limited.stderr).toContain(
      `--apply refused: ${orphanIds.length} orphans of ${expected.enabled} enabled accounts exceed --max-disable ${orphanIds.length - 1} (${orphanIds.length - 1}); nothing was changed.`,
    );
    expect(JSON.parse(limited.stdout)).toMatchObject({ mode: 'apply', applied: null, refused: expect.stringContaining('--apply refused') });
    const human = cli(['reconcile', '--hr-snapshot', csv, '--apply', '--max-disable', '0%'], s);
    expect(human.code).toBe(5);
    expect(human.stdout).toContain('exceed --max-disable 0% (0); nothing was changed');
    expect(human.stdout).not.toContain('APPLIED');

    const applied = cli(['reconcile', '--hr-snapshot', csv, '--apply', '--format', 'json'], s);
    expect(applied.stderr).not.toMatch(/Error/);
    expect(applied.code).toBe(0);
    const doc = JSON.parse(applied.stdout);
    expect(doc.mode).toBe('apply');
    expect(doc.applied).toMatchObject({ disabled: orphanIds.length, alreadyApplied: 0, unchanged: 0, refused: 0 });
    expect(doc.applied.items.map((i: any) => [i.identityId, i.outcome])).toEqual(orphanIds.map((x) => [x, 'disabled']));

    const t = await restart(s);
    try {
      // One AccountDisabled per orphan and nothing else.
      expect(await t.eventCount()).toBe(events + orphanIds.length);
      for (const identityId of orphanIds) {
        const got = await t.get(`/identities/${identityId}`);
        expect([identityId, got.body.status, got.body.disabledReason]).toEqual([identityId, 'disabled', 'reconciliation']);
      }
      const hist = await t.get(`/identities/${orphanIds[0]}/history`);
      expect(hist.body.events.at(-1)).toMatchObject({
        type: 'AccountDisabled',
        source: 'reconciliation',
        actor: 'cli',
        correlationId: doc.applied.correlationId,
        data: { reason: 'reconciliation', source: 'admin', note: expect.stringMatching(/^not in HR snapshot sha256:[0-9a-f]{12}$/) },
      });
      const jit = await t.get(`/identities/${s.jitIdentities[0]}/history`);
      expect(jit.body.events.at(-1).data.note).toMatch(/^no HR link; snapshot sha256:/);
      // Everyone else is as they were: ghosts, drifted and terminated-in-HR accounts stay enabled.
      for (const e of [s.ranges.ghosts[0], s.ranges.deptDrift[0], s.ranges.terminatedInHr[0]]) {
        expect([e, (await t.get(`/identities/${id(e)}`)).body.status]).toEqual([e, 'active']);
      }
      let disabled = 0;
      for (let after = ''; ; ) {
        const page = await t.get(`/identities?status=disabled&limit=500${after ? `&after=${after}` : ''}`);
        disabled += page.body.items.length;
        if (!page.body.next) break;
        after = page.body.next;
      }
      // The orphans plus the five leavers HR terminated.
      expect(disabled).toBe(orphanIds.length + 5);
    } finally {
      await t.stop();
    }

    const again = cli(['reconcile', '--hr-snapshot', csv, '--apply', '--format', 'json'], s);
    expect(again.code).toBe(0);
    const doc2 = JSON.parse(again.stdout);
    expect(doc2.counts).toEqual({ ...expected.counts, orphans: 0 });
    expect(doc2.applied).toMatchObject({ disabled: 0, items: [] });
    // A dry run is now clean of orphans but still exits 2 for the rest.
    expect(json(['--hr-snapshot', csv]).code).toBe(2);
    const t2 = await restart(s);
    try {
      expect(await t2.eventCount()).toBe(events + orphanIds.length);
    } finally {
      await t2.stop();
    }
  });

  it('bad input exits 65 (data), 66 (no file) or 64 (usage) with a clear message, and writes nothing', async () => {
    const count = async () => {
      const t = await restart(s);
      try {
        return await t.eventCount();
      } finally {
        await t.stop();
      }
    };
    const events = await count();
    const bad = (name: string, content: string) => {
      const f = join(work, name);
      writeFileSync(f, content);
      return f;
    };
    const cases: [string, number, RegExp][] = [
      [bad('nokey.csv', 'email,department\r\na@example.com,Sales\r\n'), 65, /line 1: the header row has no employeeId column \(found: "email", "department"\)/],
      [bad('dup.csv', 'employeeId,department\nE1,Sales\nE2,Sales\nE1,Finance\n'), 65, /line 4: duplicate employeeId "E1" \(first at line 2\)/],
      [bad('quote.csv', 'employeeId,title\nE1,Engineer\nE2,"Engineer\nE3,Engineer\n'), 65, /not valid CSV: line 3: a quoted field is never closed/],
      [bad('width.csv', 'employeeId,title\nE1,Engineer,extra\n'), 65, /line 2: 3 fields, but the header \(line 1\) has 2/],
      [bad('status.csv', 'employeeId,status\nE1,active\nE2,fired\n'), 65, /line 3: status "fired" is not one of active, pending, leave, terminated/],
      [bad('broken.json', '[\n  {"employeeId": "E1"},\n  {"employeeId": "E2",}\n]'), 65, /not valid JSON: line 3: /],
      [bad('dup.json', '{"employees": [{"employeeId": "E1"}, {"employeeId": "E1"}]}'), 65, /record 2: duplicate employeeId "E1" \(first at record 1\)/],
      [bad('shape.json', '{"people": []}'), 65, /an array of records or an object \{ "employees": \[\.\.\.\] \}/],
      [join(work, 'nope.csv'), 66, /cannot read the HR snapshot .*nope\.csv/],
    ];
    for (const [file, code, message] of cases) {
      const r = cli(['reconcile', '--hr-snapshot', file, '--apply'], s);
      expect([file, r.code, r.stdout]).toEqual([file, code, '']);
      expect(r.stderr).toMatch(message);
      if (code === 65) expect(r.stderr).toContain('nothing was applied');
    }
    expect(cli(['reconcile'], s).code).toBe(64);
    for (const args of [['--format', 'xml'], ['--ghost-days', '3.5'], ['--what'], ['--apply', '--dry-run'], ['--limit', 'all'], ['--max-disable', '5x'], ['--max-disable', '101%'], ['--out', join(work, 'no/such/dir/report.txt')]]) {
      const r = cli(['reconcile', '--hr-snapshot', csv, ...args], s);
      expect([args.join(' '), r.code, r.stdout]).toEqual([args.join(' '), 64, '']);
    }
    expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await count()).toBe(events);
  });
});
