import { ManualClock } from '@idlc/domain';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SCIM_TOKEN, userBody } from '../scim/scim-client';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';
import { runCli } from '../support/cli';
import { TestOidcIdp } from '../support/test-idp';

const ROOT = resolve(__dirname, '../..');
export const POLICY = resolve(ROOT, 'config/birthright.yaml');
const DAY = 86_400_000;

/**
 * How many people fall in each group. Employee ids are E00001.. in this order:
 * old cohort (hired 50 days before the real now), then recent cohort (hired 10 days before).
 */
export interface Scale {
  old: number;
  /** First old ones log in through SSO (not ghosts). */
  oldLoggedIn: number;
  /** First of the logged-in ones log in with another title: SSO changes it, HR does not. */
  titleDrift: number;
  /** Next logged-in ones: the snapshot has an empty costCenter (HR holds none, the engine does). */
  costCenterDrift: number;
  /** Last old ones are left out of the snapshot: orphans. */
  oldOrphans: number;
  recent: number;
  /** Last recent ones are left out of the snapshot: orphans. */
  recentOrphans: number;
  /** Recent ones from index 100 (or the middle when smaller) get another department in the snapshot. */
  deptDrift: number;
  /** Recent ones after those are terminated in the snapshot but still enabled. */
  terminatedInHr: number;
  /** People in the snapshot the engine never heard of. */
  missing: number;
}

export const eid = (n: number) => `E${String(n).padStart(5, '0')}`;

export interface Person {
  employeeId: string;
  givenName: string;
  familyName: string;
  email: string;
  department: string;
  title: string;
  location: string;
  costCenter: string;
  employmentType: string;
  organization: string;
}

const person = (employeeId: string): Person => ({
  employeeId,
  givenName: `Given${employeeId}`,
  familyName: `Family${employeeId}`,
  email: `${employeeId.toLowerCase()}@example.com`,
  department: 'Engineering',
  title: 'Engineer',
  location: 'London',
  costCenter: 'CC-100',
  employmentType: 'employee',
  // A comma and quotes in every row: the CSV must quote and unquote them.
  organization: 'Acme, "Core" Ltd',
});

const attributes = (p: Person): Omit<Person, 'employeeId'> => {
  const { employeeId: _id, ...rest } = p;
  return rest;
};

export interface Seeded {
  dir: string;
  /** PostgreSQL schema when seeded on PostgreSQL. */
  schema?: string;
  env: Record<string, string>;
  identityOf: Map<string, string>;
  jitIdentities: string[];
  scimIdentity: string;
  /** The snapshot's people, in file order. */
  snapshot: (Person & { status: string })[];
  /** Where the real clock stood when seeding started: old hires at base-50d, recent at base-10d. */
  base: number;
  scale: Scale;
  idp: TestOidcIdp;
  idpsFile: string;
  ranges: ReturnType<typeof rangesOf>;
}

export function rangesOf(s: Scale) {
  const old = Array.from({ length: s.old }, (_, i) => eid(i + 1));
  const recent = Array.from({ length: s.recent }, (_, i) => eid(s.old + i + 1));
  const loggedIn = old.slice(0, s.oldLoggedIn);
  const titleDrift = loggedIn.slice(0, s.titleDrift);
  const costCenterDrift = loggedIn.slice(s.titleDrift, s.titleDrift + s.costCenterDrift);
  const oldOrphans = old.slice(old.length - s.oldOrphans);
  const ghosts = old.slice(s.oldLoggedIn, old.length - s.oldOrphans);
  const recentOrphans = recent.slice(recent.length - s.recentOrphans);
  const driftFrom = Math.min(100, Math.floor(s.recent / 4));
  const deptDrift = recent.slice(driftFrom, driftFrom + s.deptDrift);
  // A gap of 100 after the drifted ones when there is room (E00601.. at full scale).
  const termFrom = driftFrom + s.deptDrift + (recent.length - s.recentOrphans >= driftFrom + s.deptDrift + 100 + s.terminatedInHr ? 100 : 0);
  const terminatedInHr = recent.slice(termFrom, termFrom + s.terminatedInHr);
  const missing = Array.from({ length: s.missing }, (_, i) => `M${String(i + 1).padStart(5, '0')}`);
  return { old, recent, loggedIn, titleDrift, costCenterDrift, oldOrphans, ghosts, recentOrphans, deptDrift, terminatedInHr, missing };
}

const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Seeds a real server through its HTTP API (signed HR webhook batches, OIDC logins, a SCIM
 * client), then stops it and writes the HR snapshot. Nothing is written to the store directly.
 */
export async function seed(scale: Scale, env: Record<string, string>, snapshotFile: string): Promise<Seeded> {
  const ranges = rangesOf(scale);
  const idp = await TestOidcIdp.start();
  const base = Math.floor(Date.now() / 1000) * 1000;
  const clock = new ManualClock(base - 50 * DAY);
  const idpsFile = join(tmpdir(), `idlc-recon-idps-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    idpsFile,
    JSON.stringify([idp.config({ id: 'corp-oidc', attributeMapping: { employee_number: 'employeeId', title: 'title' }, jit: true })]),
  );
  // The schema is named here, not by startTestApp, so it outlives the stopped server (dropped by dropSchema).
  const schema = env.EVENT_STORE === 'postgres' ? `t_${randomUUID().replace(/-/g, '').slice(0, 12)}` : undefined;
  if (schema) env = { ...env, DATABASE_SCHEMA: schema };
  const t: TestApp = await startTestApp({ ...env, SSO_IDPS_FILE: idpsFile, SCIM_TOKENS: SCIM_TOKEN }, clock);
  const identityOf = new Map<string, string>();

  const hireAll = async (ids: string[], effectiveDate: string, prefix: string) => {
    for (let i = 0; i < ids.length; i += 1000) {
      const events = ids.slice(i, i + 1000).map((id) => ({ eventId: `${prefix}-${id}`, type: 'hire', employeeId: id, effectiveDate, attributes: attributes(person(id)) }));
      const r = await t.hr({ events });
      if (r.status !== 200 || r.body.summary.applied !== events.length) throw new Error(`hire batch: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
      r.body.results.forEach((x: { identityId: string }, j: number) => identityOf.set(events[j].employeeId, x.identityId));
    }
  };
  const login = async (claims: Record<string, unknown>) => {
    const idToken = await idp.signIdToken({ now: t.clock.now(), claims });
    const r = await t.post('/sso/login', { idToken });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.identityId as string;
  };

  // Old cohort, hired and provisioned 50 days before now.
  await hireAll(ranges.old, ymd(clock.now().getTime() - DAY), 'h');
  clock.advance(40 * DAY);
  // Recent cohort, 10 days before now.
  await hireAll(ranges.recent, ymd(clock.now().getTime() - DAY), 'h');
  for (const id of ranges.loggedIn) {
    const title = ranges.titleDrift.includes(id) ? 'Principal Engineer' : 'Engineer';
    const got = await login({ sub: `sub-${id}`, employee_number: id, title });
    if (got !== identityOf.get(id)) throw new Error(`login of ${id} went to ${got}`);
  }
  // Two SSO just-in-time accounts and one SCIM-only account: no HR link at all.
  const jitIdentities = [await login({ sub: 'jit-1', title: 'Contractor' }), await login({ sub: 'jit-2' })];
  const scim = await t.post('/scim/v2/Users', userBody('scim.only@example.com'), { authorization: `Bearer ${SCIM_TOKEN}`, 'content-type': 'application/scim+json' });
  if (scim.status !== 201) throw new Error(`scim: ${scim.status} ${JSON.stringify(scim.body)}`);
  // Hired then terminated (disabled): T00001-2 are in the snapshot as terminated, T00003-5 are not. Neither is a finding.
  const leavers = ['T00001', 'T00002', 'T00003', 'T00004', 'T00005'];
  await hireAll(leavers, ymd(clock.now().getTime() - 5 * DAY), 'h');
  const term = await t.hr({ events: leavers.map((id) => ({ eventId: `t-${id}`, type: 'terminate', employeeId: id, effectiveDate: ymd(clock.now().getTime() - DAY), reason: 'resignation' })) });
  if (term.body.summary.applied !== leavers.length) throw new Error(`terminations: ${JSON.stringify(term.body)}`);
  // A future joiner (account pending) HR's snapshot does not list yet: not enabled, so no orphan.
  await hireAll(['P00001'], ymd(base + 60 * DAY), 'h');
  await t.settle();

  const dir = t.dir;
  // Stop the server but keep its data, as an operator would before running the CLI.
  await t.app.close();
  await t.engine.close();

  const omitted = new Set([...ranges.oldOrphans, ...ranges.recentOrphans]);
  const snapshot: Seeded['snapshot'] = [];
  for (const id of [...ranges.old, ...ranges.recent]) {
    if (omitted.has(id)) continue;
    const p = person(id);
    if (ranges.deptDrift.includes(id)) p.department = 'Finance';
    if (id === ranges.deptDrift[0]) p.location = 'Paris';
    if (ranges.costCenterDrift.includes(id)) p.costCenter = '';
    snapshot.push({ ...p, status: ranges.terminatedInHr.includes(id) ? 'terminated' : 'active' });
  }
  snapshot.push({ ...person('T00001'), status: 'terminated' }, { ...person('T00002'), status: 'Terminated' });
  for (const id of ranges.missing) snapshot.push({ ...person(id), status: 'active' });
  writeCsv(snapshotFile, snapshot);
  return {
    dir,
    schema,
    env,
    identityOf,
    jitIdentities,
    scimIdentity: scim.body.id,
    snapshot,
    base,
    scale,
    idp,
    idpsFile,
    ranges,
  };
}

const COLUMNS = ['employeeId', 'givenName', 'familyName', 'email', 'department', 'title', 'location', 'costCenter', 'employmentType', 'organization', 'status'] as const;

const field = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** The snapshot as an HR export writes it: BOM, CRLF, an extra column the engine does not know. */
export function writeCsv(file: string, rows: (Person & { status: string })[]): void {
  const lines = [[...COLUMNS, 'hireDate'].join(',')];
  for (const r of rows) lines.push([...COLUMNS.map((c) => field(r[c])), '2020-01-01'].join(','));
  writeFileSync(file, '\uFEFF' + lines.join('\r\n') + '\r\n');
}

/** The same people as JSON ({ "employees": [...] }); an empty costCenter becomes null. */
export function writeJson(file: string, rows: (Person & { status: string })[]): void {
  writeFileSync(file, JSON.stringify({ employees: rows.map((r) => ({ ...r, costCenter: r.costCenter === '' ? null : r.costCenter })) }, null, 1));
}

/** Runs the built CLI as an operator would, on the seeded data directory or schema. */
export function cli(args: string[], s: { dir: string; env: Record<string, string> }, input?: string) {
  return runCli(args, { DATA_DIR: s.dir, BIRTHRIGHT_POLICY_FILE: POLICY, HR_WEBHOOK_SECRETS: HR_SECRET, LOG_LEVEL: 'silent', ...s.env }, { input, timeoutMs: 120_000 });
}

/** Removes what seed() left behind: the data directory, the PostgreSQL schema, the test IdP. */
export async function cleanup(s: Seeded | undefined): Promise<void> {
  if (!s) return;
  await s.idp.stop();
  rmSync(s.dir, { recursive: true, force: true });
  rmSync(s.idpsFile, { force: true });
  if (s.schema) {
    const admin = new PostgresDatabase({ connectionString: s.env.DATABASE_URL });
    await admin.exec(`DROP SCHEMA IF EXISTS ${s.schema} CASCADE`);
    await admin.close();
  }
}

/**
 * A server again on the seeded data (same directory or schema), to check through the API. Stop it
 * with stop(), not close(): close() would drop the schema the next CLI run needs.
 */
export async function restart(s: Seeded): Promise<TestApp & { stop(): Promise<void> }> {
  const t = await startTestApp({ ...s.env, DATA_DIR: s.dir }, new ManualClock(new Date()));
  await t.settle();
  return Object.assign(t, {
    async stop() {
      await t.app.close();
      await t.engine.close();
      rmSync(t.dir, { recursive: true, force: true });
    },
  });
}
