import { ManualClock } from '@idlc/domain';
import { DeadlineScheduler, Engine, HrFeedService, IdentityCommands } from '@idlc/engine';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceEnv } from '../support/services';
import { DAY, hireEvent, sagaConfig } from './helpers';

/**
 * One claimed batch holding every kind of outcome, settled the way the scheduler settles a batch
 * (per-row statements in one transaction on SQLite, set-based statements on PostgreSQL): both
 * dialects must leave the same rows behind, and the rows of the identities that moved on must be
 * the rows the deadlines projection computes from the same state.
 */
const pgUrl = serviceEnv('PostgreSQL', 'DATABASE_URL');
const backends: [string, boolean][] = [['sqlite', false]];
if (pgUrl) backends.push(['postgres', true]);

const START = Date.parse('2026-01-05T09:00:00.000Z');
const NOW = START + 30 * DAY;
const RETRY_MS = 7_000;

describe.each(backends)('settling a batch of deadlines (%s)', (_name, pg) => {
  let dir: string;
  let admin: PostgresDatabase | undefined;
  let schema: string;
  let engine: Engine;
  const opened: Engine[] = [];
  /** An engine on this test's store; a second one stands for a second process. */
  const open = async (clock: ManualClock) => {
    const e = await Engine.open({
      clock,
      config: sagaConfig(dir, pg ? { EVENT_STORE: 'postgres', DATABASE_URL: pgUrl!, DATABASE_SCHEMA: schema } : {}),
    });
    opened.push(e);
    return e;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-settle-'));
    schema = `settle_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    if (pg) {
      admin = new PostgresDatabase({ connectionString: pgUrl! });
      await admin.exec(`CREATE SCHEMA ${schema}`);
    }
    engine = await open(new ManualClock(START));
  });
  afterEach(async () => {
    // The second engine first, then this test's own (opened first).
    for (const e of opened.splice(0).reverse()) await e.close();
    if (admin) {
      await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const row = (id: string) =>
    engine.readDb.get<{ due_at: number; action: string; revision: number; claimed_by: string | null; claimed_until: number | null }>(
      'SELECT due_at, action, revision, claimed_by, claimed_until FROM deadlines WHERE identity_id = ?',
      [id],
    );
  const norm = (r: any) => r && { ...r, due_at: Number(r.due_at), revision: Number(r.revision), claimed_until: r.claimed_until === null ? null : Number(r.claimed_until) };

  it('deletes, moves, keeps failed rows leased, and releases rows a newer revision already holds', async () => {
    const hr = new HrFeedService(engine.commands);
    const ctx = { source: 'hr-webhook' as const, actor: 'test', correlationId: randomUUID() };
    // Four contractors, all inactive for 30 days at NOW; the second is also terminated at NOW's date.
    const hired = await hr.applyAll(
      ['S0', 'S1', 'S2', 'S3'].map((e) => hireEvent(`hire-${e}`, e, { employmentType: 'contractor' }) as any),
      ctx,
    );
    const [gone, moved, failing, stale] = hired.map((r) => r.identityId!);
    const term = await hr.applyAll([{ eventId: 'term-S1', type: 'terminate', employeeId: 'S1', effectiveDate: '2026-02-04', reason: 'resignation' } as any], ctx);
    expect(term[0].status).toBe('applied');
    await engine.projections.runToHead();

    (engine.clock as ManualClock).set(NOW);
    // A command that throws for one identity, as when its store write fails.
    const commands = new Proxy(engine.commands, {
      get(target, prop, receiver) {
        if (prop !== 'execute') return Reflect.get(target, prop, receiver);
        return (id: string, ...rest: unknown[]) => {
          if (id === failing) return Promise.reject(new Error('store unavailable (test)'));
          return (target.execute as (...a: unknown[]) => unknown).call(target, id, ...rest);
        };
      },
    }) as IdentityCommands;
    const errors: string[] = [];
    const scheduler = new DeadlineScheduler(engine.readDb, commands, engine.clock, engine.policies, undefined, {
      workerId: 'settle-worker',
      retryMs: RETRY_MS,
      onError: (_e, id) => errors.push(id!),
    });
    const claimed = await scheduler.claimDue(NOW, 100);
    expect(claimed.map((r) => r.identityId).sort()).toEqual([gone, moved, failing, stale].sort());
    // Meanwhile the projection wrote a newer, later deadline for one of them (its revision is ahead of
    // anything this batch's command will reach).
    const later = NOW + 90 * DAY;
    await engine.readDb.run('UPDATE deadlines SET revision = revision + 100, due_at = ? WHERE identity_id = ?', [later, stale]);
    const staleRevision = Number((await row(stale))!.revision);

    expect(await scheduler.fireClaimed(claimed)).toBe(3);
    expect(errors).toEqual([failing]);

    // Inactivity disable leaves nothing scheduled: the row is gone.
    expect(await row(gone)).toBeUndefined();
    // Termination applied: the next deadline is the deletion after retention, released.
    const movedState = await engine.repository.loadCurrent(moved);
    const retentionDays = engine.policies.lifecycle().retentionDays;
    expect(norm(await row(moved))).toEqual({
      due_at: Date.parse('2026-02-04T00:00:00.000Z') + retentionDays * DAY,
      action: 'delete',
      revision: movedState.revision,
      claimed_by: null,
      claimed_until: null,
    });
    // The failed command's row stays claimed by this worker until the retry time.
    expect(norm(await row(failing))).toMatchObject({ action: 'disable-inactive', claimed_by: 'settle-worker', claimed_until: NOW + RETRY_MS });
    // The newer row is not overwritten by this batch's older decision, but the claim is given back.
    expect(norm(await row(stale))).toMatchObject({ due_at: later, revision: staleRevision, claimed_by: null, claimed_until: null });

    // What the scheduler wrote for the identities that moved on is what the projection writes.
    const settled = [norm(await row(gone)), norm(await row(moved))];
    await engine.projections.runToHead();
    expect([norm(await row(gone)), norm(await row(moved))]).toEqual(settled);

    // Nothing is claimable now; after the retry time the failed row is, and fires once the store works.
    expect(await scheduler.claimDue(NOW, 100)).toEqual([]);
    (engine.clock as ManualClock).set(NOW + RETRY_MS + 1);
    const retry = new DeadlineScheduler(engine.readDb, engine.commands, engine.clock, engine.policies, undefined, { workerId: 'settle-worker' });
    expect(await retry.runDue()).toBe(1);
    expect(await row(failing)).toBeUndefined();
  });

  it('decides a preloaded batch on current states: no head or key reads per command, even for a state another process moved', async () => {
    const hr = new HrFeedService(engine.commands);
    const hired = await hr.applyAll(
      ['W0', 'W1'].map((e) => hireEvent(`hire-${e}`, e, { employmentType: 'contractor' }) as any),
      { source: 'hr-webhook' as const, actor: 'test', correlationId: randomUUID() },
    );
    const [seen, idle] = hired.map((r) => r.identityId!);
    await engine.projections.runToHead();
    // This process holds both aggregates in its cache; another process then records a login for one.
    const cachedBefore = await engine.repository.load(seen);
    (engine.clock as ManualClock).set(START + 10 * DAY);
    const other = await open(engine.clock as ManualClock);
    const login = await other.commands.execute(seen, [{ kind: 'RecordLogin', issuer: 'https://idp.example.com', subject: 'sub-w0', protocol: 'oidc' }], {
      metadata: { source: 'sso', actor: 'https://idp.example.com' },
    });
    expect(login.events.length).toBeGreaterThan(0);
    // SQLite's mark is read once per event-loop turn; a real second process commits in a turn of its own.
    await new Promise((r) => setImmediate(r));
    expect((await engine.repository.load(seen)).revision).toBe(cachedBefore.revision); // stale, as far as this process knows

    // Both deadline rows still say "inactive at START + 30 days" (the projection has not seen the login).
    (engine.clock as ManualClock).set(NOW);
    const calls = { streamRevision: 0, lookupIdempotencyKey: 0, readStream: 0, append: 0, appendMany: 0 };
    const store = engine.store as unknown as Record<keyof typeof calls, (...a: unknown[]) => unknown>;
    for (const name of Object.keys(calls) as (keyof typeof calls)[]) {
      const original = store[name].bind(engine.store);
      store[name] = (...a: unknown[]) => (calls[name]++, original(...a));
    }
    const appendMany = engine.store.appendMany.bind(engine.store);
    const requested: string[][] = [];
    engine.store.appendMany = (requests) => (requested.push(requests.map((r) => r.streamId)), appendMany(requests));
    expect(await engine.scheduler.runDue()).toBe(1);
    // One appendMany for the batch (the disable, and the no-op recording its key), no conflict
    // retried, and not one per-command read: the preload brought the moved state current.
    expect(calls).toEqual({ streamRevision: 0, lookupIdempotencyKey: 0, readStream: 0, append: 0, appendMany: 1 });
    expect(requested.map((r) => [...r].sort())).toEqual([[`identity-${seen}`, `identity-${idle}`].sort()]);
    expect((await engine.repository.load(idle)).account).toBe('disabled');
    const current = await engine.repository.load(seen);
    expect(current.account).toBe('active');
    expect(current).toEqual(await engine.repository.replay(seen));
    expect(Number((await row(seen))!.due_at)).toBe(START + 40 * DAY);
  });

  it('executeMany: a stale cached state conflicts and is decided again on its head, a taken key fails alone, the rest commit together', async () => {
    const hr = new HrFeedService(engine.commands);
    const hired = await hr.applyAll(
      ['M0', 'M1', 'M2'].map((e) => hireEvent(`hire-${e}`, e, { employmentType: 'contractor' }) as any),
      { source: 'hr-webhook' as const, actor: 'test', correlationId: randomUUID() },
    );
    const [moved, idle, linker] = hired.map((r) => r.identityId!);
    for (const id of [moved, idle, linker]) await engine.repository.load(id);
    // Another process records a login for one; no preload tells this one.
    (engine.clock as ManualClock).set(START + 10 * DAY);
    const other = await open(engine.clock as ManualClock);
    await other.commands.execute(moved, [{ kind: 'RecordLogin', issuer: 'https://idp.example.com', subject: 'sub-m0', protocol: 'oidc' }], {
      metadata: { source: 'sso', actor: 'https://idp.example.com' },
    });
    await new Promise((r) => setImmediate(r));
    (engine.clock as ManualClock).set(NOW);
    const metadata = { source: 'saga', actor: 'test' };
    const items = [
      { identityId: moved, commands: [{ kind: 'ApplyDueEffects' as const }], options: { idempotencyKey: `k-${moved}`, metadata } },
      { identityId: idle, commands: [{ kind: 'ApplyDueEffects' as const }], options: { idempotencyKey: `k-${idle}`, metadata } },
      { identityId: linker, commands: [{ kind: 'LinkKey' as const, key: { kind: 'hr' as const, value: 'M1' } }], options: { metadata } },
    ];
    const results = await engine.commands.executeMany(items);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const [m, i] = results.map((r) => (r as PromiseFulfilledResult<any>).value);
    // Decided again on the head, which holds the login: nothing is due, its key is recorded.
    expect([m.duplicate, m.events, m.state.account]).toEqual([false, [], 'active']);
    expect(m.state).toEqual(await engine.repository.replay(moved));
    expect([i.events.map((e: { type: string }) => e.type), i.state.account]).toEqual([['AccountDisabled'], 'disabled']);
    expect(i.state).toEqual(await engine.repository.replay(idle));
    const refused = (results[2] as PromiseRejectedResult).reason;
    expect([refused.name, refused.ownerIdentityId]).toEqual(['DuplicateKeyError', idle]);
    expect((await engine.repository.replay(linker)).revision).toBe((await engine.repository.load(linker)).revision);
    // The same batch again (a retried claim): both keyed commands answer as duplicates.
    const again = await engine.commands.executeMany(items.slice(0, 2));
    expect(again.map((r) => r.status === 'fulfilled' && r.value.duplicate)).toEqual([true, true]);
    expect((await engine.store.readStream(`identity-${idle}`)).filter((e) => e.type === 'AccountDisabled')).toHaveLength(1);
  });

  it('runDue claims and preloads the next batch while the current one is appended; a stop fires what is claimed and leaves no claim behind', async () => {
    const hr = new HrFeedService(engine.commands);
    const hired = await hr.applyAll(
      Array.from({ length: 10 }, (_, i) => hireEvent(`hire-P${i}`, `P${i}`, { employmentType: 'contractor' }) as any),
      { source: 'hr-webhook' as const, actor: 'test', correlationId: randomUUID() },
    );
    const ids = hired.map((r) => r.identityId!);
    await engine.projections.runToHead();
    (engine.clock as ManualClock).set(NOW);
    const log: string[] = [];
    let batches = 0;
    // The first batch's append waits until the second batch has been claimed and preloaded.
    let preloaded2!: () => void;
    const secondPreloaded = new Promise<void>((r) => (preloaded2 = r));
    const commands = new Proxy(engine.commands, {
      get(target, prop, receiver) {
        if (prop !== 'executeMany') return Reflect.get(target, prop, receiver);
        return async (items: Parameters<IdentityCommands['executeMany']>[0]) => {
          const n = ++batches;
          log.push(`append ${n} starts`);
          // Bounded, so a scheduler that claims only after appending fails on the order below instead of hanging.
          if (n === 1) await Promise.race([secondPreloaded, new Promise((r) => setTimeout(r, 2000))]);
          const out = await target.executeMany(items);
          log.push(`append ${n} done`);
          return out;
        };
      },
    }) as IdentityCommands;
    let prefetches = 0;
    const scheduler = new DeadlineScheduler(engine.readDb, commands, engine.clock, engine.policies, undefined, {
      workerId: 'pipeline-worker',
      batchSize: 4,
      prefetch: async (batch) => {
        await engine.repository.preload(batch);
        const n = ++prefetches;
        log.push(`preload ${n}`);
        if (n === 2) {
          preloaded2();
          // Stopped while the second batch is claimed and the first is still being appended.
          void scheduler.stop();
        }
      },
    });
    const fired = await scheduler.runDue();
    expect(log).toEqual(['preload 1', 'append 1 starts', 'preload 2', 'append 1 done', 'append 2 starts', 'append 2 done']);
    // Both claimed batches fired, each identity once; the third was never claimed, and no row is left leased.
    expect(fired).toBe(8);
    let disabled = 0;
    for (const id of ids) {
      const state = await engine.repository.loadCurrent(id);
      expect(state).toEqual(await engine.repository.replay(id));
      if (state.account === 'disabled') disabled++;
    }
    expect(disabled).toBe(8);
    const left = await engine.readDb.all<{ claimed_by: string | null }>('SELECT claimed_by FROM deadlines');
    expect(left.map((r) => r.claimed_by)).toEqual([null, null]);
    const rest = new DeadlineScheduler(engine.readDb, engine.commands, engine.clock, engine.policies, undefined, { workerId: 'rest' });
    expect(await rest.runDue()).toBe(2);
  });

  /**
   * The scheduler's database with its settle transactions observed: `onSettle(n)` runs before the
   * n-th settle's first statement (inside its transaction; a throw rolls it back), and the log says
   * when each settle starts and commits. A claim is the transaction whose statement selects due rows.
   */
  const observedSettles = (log: string[], onSettle: (n: number) => Promise<void>) => {
    const db = engine.readDb;
    let settles = 0;
    return new Proxy(db, {
      get(target, prop) {
        if (prop !== 'transaction') {
          const v = Reflect.get(target, prop);
          return typeof v === 'function' ? v.bind(target) : v;
        }
        return <T>(fn: (tx: any) => Promise<T>) => {
          let n = 0;
          let seen = false;
          return target
            .transaction(async (tx) => {
              const first = async (sql: string) => {
                if (seen) return;
                seen = true;
                if (/due_at <= \?/.test(sql)) return;
                n = ++settles;
                log.push(`settle ${n} starts`);
                await onSettle(n);
              };
              const observed = {
                all: async (sql: string, params?: unknown[]) => (await first(sql), tx.all(sql, params)),
                get: async (sql: string, params?: unknown[]) => (await first(sql), tx.get(sql, params)),
                run: async (sql: string, params?: unknown[]) => (await first(sql), tx.run(sql, params)),
                dialect: tx.dialect,
              };
              return fn(observed);
            })
            .then((out) => (n && log.push(`settle ${n} done`), out));
        };
      },
    }) as typeof db;
  };

  /** Twelve contractors inactive at NOW, three claim batches of four. */
  const twelveInactive = async () => {
    const hr = new HrFeedService(engine.commands);
    const hired = await hr.applyAll(
      Array.from({ length: 12 }, (_, i) => hireEvent(`hire-Q${i}`, `Q${i}`, { employmentType: 'contractor' }) as any),
      { source: 'hr-webhook' as const, actor: 'test', correlationId: randomUUID() },
    );
    await engine.projections.runToHead();
    (engine.clock as ManualClock).set(NOW);
    return hired.map((r) => r.identityId!);
  };
  const loggedCommands = (log: string[]) => {
    let batches = 0;
    return new Proxy(engine.commands, {
      get(target, prop, receiver) {
        if (prop !== 'executeMany') return Reflect.get(target, prop, receiver);
        return async (items: Parameters<IdentityCommands['executeMany']>[0]) => {
          const n = ++batches;
          log.push(`append ${n} starts`);
          const out = await target.executeMany(items);
          log.push(`append ${n} done`);
          return out;
        };
      },
    }) as IdentityCommands;
  };
  const accountDisabledCounts = async (ids: string[]) =>
    Promise.all(ids.map(async (id) => (await engine.store.readStream(`identity-${id}`)).filter((e) => e.type === 'AccountDisabled').length));

  it('a settle that fails makes runDue fail; its rows and the claimed next batch stay leased, and a later run fires each identity once', async () => {
    const ids = await twelveInactive();
    const log: string[] = [];
    const db = observedSettles(log, async (n) => {
      if (n === 2) throw new Error('settle 2 lost its connection');
    });
    const scheduler = new DeadlineScheduler(db, loggedCommands(log), engine.clock, engine.policies, undefined, {
      workerId: 'settle-fails',
      batchSize: 4,
      leaseMs: 60_000,
      prefetch: (batch) => engine.repository.preload(batch),
    });
    await expect(scheduler.runDue()).rejects.toThrow('settle 2 lost its connection');
    // The third batch was claimed while the second was appended, and not fired after the failure.
    expect(log.filter((l) => l.startsWith('append'))).toEqual(['append 1 starts', 'append 1 done', 'append 2 starts', 'append 2 done']);
    expect(log.filter((l) => l.startsWith('settle'))).toEqual(['settle 1 starts', 'settle 1 done', 'settle 2 starts']);
    expect((await accountDisabledCounts(ids)).sort()).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    const leased = await engine.readDb.all<{ identity_id: string }>('SELECT identity_id FROM deadlines WHERE claimed_by IS NOT NULL ORDER BY identity_id');
    expect(leased).toHaveLength(8);
    // Nothing to claim until the leases run out.
    const again = new DeadlineScheduler(engine.readDb, engine.commands, engine.clock, engine.policies, undefined, { workerId: 'after', leaseMs: 60_000 });
    expect(await again.runDue()).toBe(0);
    (engine.clock as ManualClock).set(NOW + 60_001);
    // Then the third batch fires, and the second's commands answer from their idempotency keys.
    expect(await again.runDue()).toBe(4);
    expect(await accountDisabledCounts(ids)).toEqual(ids.map(() => 1));
    const left = await engine.readDb.all<{ claimed_by: string | null }>('SELECT claimed_by FROM deadlines');
    expect(left.filter((r) => r.claimed_by !== null)).toEqual([]);
    for (const id of ids) expect(await engine.repository.loadCurrent(id)).toEqual(await engine.repository.replay(id));
  });
});
