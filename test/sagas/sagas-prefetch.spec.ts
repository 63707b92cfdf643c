import { DeadlineScheduler, DeadlinesProjection } from '@idlc/engine';
import { startTestApp, TestApp } from '../support/app';
import { DAY, hire } from './helpers';

/** The scheduler's bulk warm-up of a claimed batch is only that: when it fails, the deadlines still fire. */
describe('deadline scheduler prefetch', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
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
