import { DeadlineScheduler, DeadlinesProjection, verifyChains } from '@idlc/engine';
import { identityStream } from '@idlc/domain';
import { startTestApp, TestApp } from '../support/app';
import { DAY, hire } from './helpers';

describe('deadline scheduler prefetch', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('the repository preloads cold aggregates in bulk: the states a full replay gives, from snapshots where there are some', async () => {
    t = await startTestApp({ WORKER_MODE: 'api', SNAPSHOT_EVERY: '10' });
    const ids = [await hire(t, 'PL1'), await hire(t, 'PL2'), await hire(t, 'PL3')];
    // PL1 moves a few times: its stream passes the snapshot interval.
    for (const [i, dept] of ['Sales', 'Finance', 'Legal', 'Marketing', 'Operations', 'Finance', 'Legal', 'Sales', 'Support'].entries()) {
      const r = await t.hr({ eventId: `pl1-move-${i}`, type: 'change', employeeId: 'PL1', effectiveDate: '2026-01-05', attributes: { department: dept } });
      expect(r.status).toBe(200);
    }
    const { engine } = t;
    const repo = engine.repository;
    const snapshots = await engine.store.loadSnapshots(ids.map(identityStream));
    expect([...snapshots.keys()]).toEqual([identityStream(ids[0])]);

    repo.clear();
    let singleReads = 0;
    const readStream = engine.store.readStream.bind(engine.store);
    engine.store.readStream = (...a) => (singleReads++, readStream(...a));
    const replaysBefore = repo.fullReplays;
    await repo.preload([...ids, 'not-an-identity']);
    // Folded from the first event: the two without a snapshot and the unknown id (as refresh() counts it).
    expect(repo.fullReplays - replaysBefore).toBe(3);
    const loaded = await Promise.all(ids.map((id) => repo.load(id)));
    expect(singleReads).toBe(0);
    engine.store.readStream = readStream;
    expect(loaded).toEqual(await Promise.all(ids.map((id) => repo.replay(id))));
    expect(loaded[0].attributes.department).toBe('Support');
    // A cached aggregate is left as it is: nothing is read for it again.
    const readStreams = engine.store.readStreams.bind(engine.store);
    let bulkReads = 0;
    engine.store.readStreams = (...a) => (bulkReads++, readStreams(...a));
    await repo.preload(ids);
    expect(bulkReads).toBe(0);
    // The next commands append on top of the preloaded states, linked to the hash chain heads they hold.
    for (const [i, id] of ['PL1', 'PL2'].entries()) {
      const r = await t.hr({ eventId: `pl-after-${i}`, type: 'change', employeeId: id, effectiveDate: '2026-01-06', attributes: { title: 'Lead' } });
      expect(r.body.results[0].status).toBe('applied');
    }
    expect(await Promise.all(ids.map((id) => repo.load(id)))).toEqual(await Promise.all(ids.map((id) => repo.replay(id))));
    expect(await verifyChains(engine.store)).toMatchObject({ ok: true, unhashed: 0, firstBreak: null });
  });

  it('hands each claimed batch to prefetch, and fires the batch even when prefetch throws', async () => {
    t = await startTestApp({ WORKER_MODE: 'api', INACTIVITY_WARNING_DAYS: '0' });
    const ids = [await hire(t, 'PF1', { employmentType: 'contractor' }), await hire(t, 'PF2', { employmentType: 'contractor' })];
    await t.settle();
    const { engine } = t;
    const due = await engine.readDb.all<{ identity_id: string; due_at: number }>('SELECT identity_id, due_at FROM deadlines ORDER BY identity_id');
    expect(due.map((r) => r.identity_id)).toEqual([...ids].sort());
    const batches: string[][] = [];
    const errors: string[] = [];
    const projection = engine.projections.projections.find((p): p is DeadlinesProjection => p instanceof DeadlinesProjection);
    const scheduler = new DeadlineScheduler(engine.readDb, engine.commands, engine.clock, engine.policies, projection, {
      prefetch: async (batch) => {
        batches.push([...batch].sort());
        throw new Error('key table unreachable');
      },
      onError: (e) => errors.push((e as Error).message),
    });
    t.clock.set(new Date(Math.max(...due.map((r) => Number(r.due_at))) + DAY));
    expect(await scheduler.runDue()).toBe(2);
    expect(batches).toEqual([[...ids].sort()]);
    expect(errors).toEqual(['key table unreachable']);
    for (const id of ids) expect((await engine.repository.load(id)).account).toBe('disabled');
  });
});
