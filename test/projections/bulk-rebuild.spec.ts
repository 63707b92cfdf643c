import { ManualClock } from '@idlc/domain';
import { BulkOptions, coreProjections, Engine, HrFeedService, loadConfig, ProjectionRunner, ScimService } from '@idlc/engine';
import type { SqlDatabase } from '@idlc/sql';
import { PostgresDatabase } from '@idlc/sql';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { history } from '../../bench/replay-mix';
import { DAY, hireEvent } from '../sagas/helpers';
import { describeIf, serviceEnv } from '../support/services';

/**
 * Bulk mode (large batches, several per transaction, deferred indexes, rows folded per batch) must
 * leave exactly the rows that applying the same events a few at a time leaves, on both SQL stores.
 * The events come from the real write paths (HR feed, SSO logins, SCIM users and groups, the
 * deadline sagas) plus the replay benchmark's generated mix, interleaved so that one identity's
 * events fall into many different batches.
 */
const START = Date.parse('2026-01-05T09:00:00.000Z');
const POLICY = resolve(__dirname, '../../config/birthright.yaml');
const DEPARTMENTS = ['Engineering', 'Sales', 'Finance', 'Support', 'Marketing'];
const INCREMENTAL: BulkOptions = { threshold: Number.MAX_SAFE_INTEGER, batchSize: 1, commitEvery: 1 };
const BULK: BulkOptions = { threshold: 1, batchSize: 97, commitEvery: 300 };
const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');

interface Backend {
  /** The SQLite data directory (for the CLI), when there is one. */
  dir?: string;
  open(clock: ManualClock): Promise<Engine>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-bulk-'));
  return {
    dir,
    open: (clock) => Engine.open({ clock, config: loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }) }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresBackend(url: string): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-bulk-pg-'));
  const schema = `bulk_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new PostgresDatabase({ connectionString: url });
  return {
    async open(clock) {
      await admin.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return Engine.open({
        clock,
        config: loadConfig({ EVENT_STORE: 'postgres', DATABASE_URL: u.toString(), DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: POLICY, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }),
      });
    },
    async cleanup() {
      await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A few thousand events through the real write paths and the benchmark's generator, interleaved. */
async function populate(engine: Engine, clock: ManualClock): Promise<void> {
  const hr = new HrFeedService(engine.commands);
  const scim = new ScimService(engine);
  const caller = { actor: 'test-idp', correlationId: randomUUID() };
  const meta = () => ({ source: 'hr-webhook' as const, actor: 'hr-system', correlationId: randomUUID() });
  const base = 'https://idlc.example.com/scim/v2';
  const settle = async () => {
    await engine.projections.runToHead();
    await engine.scheduler.runDue();
    await engine.projections.runToHead();
  };
  const login = (id: string, subject: string) =>
    engine.commands.execute(id, [{ kind: 'RecordLogin', issuer: 'https://idp.example.com', subject, protocol: 'oidc' }], {
      metadata: { source: 'sso', actor: 'https://idp.example.com' },
    });

  // The benchmark's mix, in two rounds so each history is split across the log.
  const bench = Array.from({ length: 250 }, () => `identity-${randomUUID()}`);
  const raw = (i: number, from: number, to: number) => history(i).slice(from, to).map((e) => ({ ...e, data: e.data as any, metadata: { source: 'bench' } }));
  for (let i = 0; i < bench.length; i++) await engine.store.append(bench[i], raw(i, 0, 5), 'no_stream');

  // HR joiners (some start later, some are contractors), movers and leavers, with the sagas firing.
  const hires = await hr.applyAll(
    Array.from({ length: 80 }, (_, i) =>
      hireEvent(`h-${i}`, `H${i}`, { department: DEPARTMENTS[i % 5], employmentType: i % 4 === 0 ? 'contractor' : 'employee' }, i % 3 === 0 ? '2026-01-12' : '2026-01-05'),
    ) as any,
    meta(),
  );
  const ids = hires.map((r) => r.identityId!);
  for (let i = 0; i < bench.length; i++) await engine.store.append(bench[i], raw(i, 5, 10), 4);
  await settle();
  // Joiners who start next week are refused (a LoginRefused event), the others log in.
  for (let i = 0; i < ids.length; i += 2) await login(ids[i], `sub-${i}`);

  // SCIM users and groups, with renames (key unlink + link), deactivations, deletions.
  const users: string[] = [];
  for (let i = 0; i < 25; i++) {
    const r = await scim.createUser(
      { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: `scim${i}@example.com`, externalId: `X${i}`, name: { givenName: 'Sc', familyName: `User${i}` }, emails: [{ value: `scim${i}@example.com`, type: 'work', primary: true }], active: true },
      base,
      caller,
    );
    users.push((r.resource as { id: string }).id);
  }
  const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
  const groups: string[] = [];
  for (let g = 0; g < 5; g++) {
    const members = [...users.slice(g * 4, g * 4 + 6), ...ids.slice(g, g + 3)].map((value) => ({ value }));
    const r = await scim.createGroup({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: `Team ${g}`, members }, base, caller);
    groups.push((r.resource as { id: string }).id);
  }
  clock.advance(DAY);
  await hr.applyAll(
    ids.slice(0, 30).map((_, i) => ({ eventId: `m-${i}`, type: 'change', employeeId: `H${i}`, effectiveDate: '2026-01-06', attributes: { department: DEPARTMENTS[(i + 2) % 5], title: 'Lead' } })) as any,
    meta(),
  );
  // Movers corrected back and forth: birthright roles granted and revoked again within one batch.
  for (let round = 0; round < 4; round++) {
    await hr.applyAll(
      [30, 31, 32].map((n) => ({ eventId: `c-${round}-${n}`, type: 'change', employeeId: `H${n}`, effectiveDate: '2026-01-06', attributes: { department: round % 2 ? 'Engineering' : 'Sales' } })) as any,
      meta(),
    );
  }
  for (let i = 0; i < 8; i++) await scim.patchUser(users[i], { schemas: [PATCH], Operations: [{ op: 'replace', path: 'userName', value: `renamed${i}@example.com` }] }, undefined, base, caller);
  for (let i = 8; i < 12; i++) await scim.patchUser(users[i], { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }, undefined, base, caller);
  await scim.patchGroup(groups[0], { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: users[20] }, { value: ids[40] }] }] }, undefined, base, caller);
  await scim.patchGroup(groups[1], { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${users[4]}"]` }] }, undefined, base, caller);
  await scim.patchGroup(groups[2], { schemas: [PATCH], Operations: [{ op: 'replace', value: { displayName: 'Platform' } }] }, undefined, base, caller);
  await scim.deleteGroup(groups[3], undefined, caller);
  for (let i = 12; i < 15; i++) await scim.deleteUser(users[i], undefined, caller);
  for (let i = 1; i < ids.length; i += 3) await login(ids[i], `sub-${i}`);

  // Leavers, a rehire, and the sagas: terminations apply, contractors go inactive, retention deletes.
  await hr.applyAll(
    ids.slice(50, 70).map((_, i) => ({ eventId: `t-${i}`, type: 'terminate', employeeId: `H${50 + i}`, effectiveDate: '2026-01-07', reason: 'resigned' })) as any,
    meta(),
  );
  clock.advance(3 * DAY);
  await settle();
  await hr.applyAll([{ eventId: 'r-1', type: 'rehire', employeeId: 'H51', effectiveDate: '2026-01-09' }] as any, meta());
  clock.advance(45 * DAY);
  await settle();
  for (let i = 0; i < ids.length; i += 5) await login(ids[i], `sub-${i}`);
  await settle();
}

/** Every read-model table as sorted JSON lines: equal snapshots mean identical rows. */
async function snapshot(db: SqlDatabase, tables: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of tables) out[t] = (await db.all(`SELECT * FROM ${t}`)).map((r) => JSON.stringify(r)).sort();
  return out;
}

async function indexes(db: SqlDatabase): Promise<string[]> {
  const rows =
    db.dialect === 'sqlite'
      ? await db.all<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'`)
      : await db.all<{ name: string }>(`SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()`);
  return rows.map((r) => r.name).sort();
}

function suite(name: string, backend: () => Backend) {
  describe(`bulk rebuild on ${name}`, () => {
    let b: Backend;
    let engine: Engine;
    let clock: ManualClock;
    const runner = (bulk: BulkOptions, batchSize = 10) =>
      new ProjectionRunner(engine.store, engine.readDb, coreProjections(engine.policies.lifecycle()), () => 0, batchSize, bulk);
    const tables = () => engine.projections.projections.flatMap((p) => p.tables);

    beforeAll(async () => {
      b = backend();
      clock = new ManualClock(START);
      engine = await b.open(clock);
      await populate(engine, clock);
    }, 120_000);
    afterAll(async () => {
      await engine?.close();
      await b?.cleanup();
    });

    it('leaves every read-model table identical to small-batch application, and every index in place', async () => {
      const head = await engine.store.headPosition();
      expect(head).toBeGreaterThan(3500);
      const allIndexes = await indexes(engine.readDb);
      expect(allIndexes).toEqual(expect.arrayContaining(engine.projections.projections.flatMap((p) => [...(p.deferrableIndexes ?? [])])));
      const live = await snapshot(engine.readDb, tables());
      expect(live.identities.length).toBe(250 + 80 + 25);
      expect(live.scim_groups.length).toBe(5);

      const small = runner(INCREMENTAL);
      await small.prepare();
      await small.reset();
      await small.runToHead();
      const incremental = await snapshot(engine.readDb, tables());
      expect(incremental).toEqual(live);

      const bulk = runner(BULK);
      await bulk.prepare();
      await bulk.reset();
      const seen: number[] = [];
      await bulk.runToHead((position) => seen.push(position));
      // Transactions of about commitEvery events, each made of batches of batchSize.
      expect(seen.length).toBe(Math.ceil(head / 300));
      expect(seen[seen.length - 1]).toBe(head);
      expect(bulk.status().every((p) => p.position === head)).toBe(true);
      expect(await snapshot(engine.readDb, tables())).toEqual(incremental);
      expect(await indexes(engine.readDb)).toEqual(allIndexes);
    }, 120_000);

    it('rebuilds one projection alone (a version bump) to the same rows, reading states the identities projection wrote earlier', async () => {
      const before = await snapshot(engine.readDb, tables());
      for (const only of [['deadlines'], ['scim', 'role-assignments'], ['identities']]) {
        const r = runner(BULK);
        await r.prepare();
        await r.reset(only);
        await r.runToHead();
        expect(await snapshot(engine.readDb, tables())).toEqual(before);
      }
    }, 120_000);

    it('after a crash in the middle of a bulk rebuild, the next start recreates the dropped indexes and finishes with the same rows', async () => {
      const before = await snapshot(engine.readDb, tables());
      const allIndexes = await indexes(engine.readDb);
      const head = await engine.store.headPosition();
      const crashing = runner(BULK);
      await crashing.prepare();
      await crashing.reset();
      const audit = crashing.projections.find((p) => p.name === 'audit-timeline')!;
      const apply = audit.apply.bind(audit);
      let calls = 0;
      audit.apply = async (events, tx, ctx) => {
        if (++calls === 12) throw new Error('crash');
        return apply(events, tx, ctx);
      };
      await expect(crashing.runToHead()).rejects.toThrow('crash');
      const stopped = Math.min(...crashing.status().map((p) => p.position));
      expect(stopped).toBeGreaterThan(0);
      expect(stopped).toBeLessThan(head);
      // A killed process never gets to create them again: take them away as it would have left them.
      for (const p of crashing.projections) for (const i of p.deferrableIndexes ?? []) await engine.readDb.exec(`DROP INDEX IF EXISTS ${i}`);

      const restarted = runner(BULK);
      await restarted.prepare();
      expect(await indexes(engine.readDb)).toEqual(allIndexes);
      expect(Math.min(...restarted.status().map((p) => p.position))).toBe(stopped);
      await restarted.runToHead();
      expect(await snapshot(engine.readDb, tables())).toEqual(before);
    }, 120_000);

    it('catches up in bulk mode when started far behind (startup after a version bump), then delivers live', async () => {
      const before = await snapshot(engine.readDb, tables());
      const r = runner(BULK);
      await r.prepare();
      await r.reset();
      const reads: number[] = [];
      const readAll = engine.store.readAll.bind(engine.store);
      const spy = jest.spyOn(engine.store, 'readAll').mockImplementation((o) => {
        reads.push(o?.maxCount ?? 0);
        return readAll(o);
      });
      r.start();
      await r.caughtUp();
      spy.mockRestore();
      // Bulk batches first, then the live subscription's own batch size.
      expect(reads.filter((n) => n === BULK.batchSize).length).toBeGreaterThan(30);
      expect(await snapshot(engine.readDb, tables())).toEqual(before);
      const id = randomUUID();
      await engine.commands.execute(id, [{ kind: 'Hire', employeeId: 'LIVE-1', effectiveAt: new Date(START).toISOString(), attributes: { givenName: 'Live', familyName: 'One', department: 'Sales' } }], {
        metadata: { source: 'admin' },
      });
      await r.caughtUp();
      expect(await engine.readDb.get('SELECT employee_id, department FROM identities WHERE identity_id = ?', [id])).toEqual({ employee_id: 'LIVE-1', department: 'Sales' });
      await r.stop();
      await engine.projections.runToHead();
    }, 120_000);

    if (name === 'SQLite') {
      it('idlc projections:rebuild goes through bulk mode and leaves the same read models', async () => {
        await engine.projections.runToHead();
        const before = await snapshot(engine.readDb, tables());
        const allIndexes = await indexes(engine.readDb);
        const head = await engine.store.headPosition();
        await engine.close();
        const root = resolve(__dirname, '../..');
        const r = spawnSync(process.execPath, [join(root, 'dist/apps/cli/src/main.js'), 'projections:rebuild'], {
          cwd: root,
          env: { ...process.env, KAFKA_BROKERS: '', EVENT_STORE: '', DATABASE_URL: '', DATA_DIR: b.dir!, BIRTHRIGHT_POLICY_FILE: POLICY, PROJECTION_BULK_THRESHOLD: '1', PROJECTION_BULK_BATCH_SIZE: '50', PROJECTION_BULK_COMMIT_EVERY: '200' },
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(r.stderr).not.toMatch(/error/i);
        expect(r.status).toBe(0);
        const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
        expect(out.events).toBe(head);
        engine = await b.open(clock);
        expect(await snapshot(engine.readDb, tables())).toEqual(before);
        expect(await indexes(engine.readDb)).toEqual(allIndexes);
      }, 120_000);
    }
  });
}

suite('SQLite', sqliteBackend);
describeIf(pgUrl)('PostgreSQL', () => suite('PostgreSQL', () => postgresBackend(pgUrl!)));
