import { join } from 'node:path';
import { startTestApp } from '../support/app';
import { closeKeepingData, DAY, hire, upcoming } from './helpers';
import { tempDirPerTest } from '../support/temp-dir';

/** The deadlines table is a projection like any other: rebuilt from the events, and from a changed policy. */
const PROVISIONED = Date.parse('2026-01-05T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('deadlines projection', () => {
  const tempDir = tempDirPerTest('idlc-deadlines-');

  it('a rebuild from zero yields exactly the rows that were projected live', async () => {
    const t = await startTestApp({ SQLITE_FILE: join(tempDir(), 'idlc.db') });
    try {
      await hire(t, 'C1', { employmentType: 'contractor' });
      const e2 = await hire(t, 'E2');
      await hire(t, 'E3', {}, '2026-02-01');
      await t.hr({ eventId: 't-2', type: 'terminate', employeeId: 'E2', effectiveDate: '2026-01-10', reason: 'resignation' });
      await t.settle();
      t.clock.set('2026-01-10T00:00:00Z');
      expect(await t.engine.scheduler.runDue()).toBe(1);
      await t.settle();
      const rows = () => t.engine.readDb.all('SELECT identity_id, due_at, action, revision, claimed_by, claimed_until FROM deadlines ORDER BY identity_id');
      const live = await rows();
      expect(live.map((r: any) => r.action).sort()).toEqual(['activate', 'delete', 'warn-inactive']);
      expect(live.find((r: any) => r.identity_id === e2)).toMatchObject({ action: 'delete', due_at: Date.parse('2026-02-09T00:00:00Z'), claimed_by: null });

      await t.engine.projections.stop();
      await t.engine.projections.reset(['deadlines']);
      expect(await rows()).toEqual([]);
      await t.engine.projections.runToHead();
      expect(await rows()).toEqual(live);
    } finally {
      await closeKeepingData(t);
    }
  });

  it('a changed lifecycle policy rebuilds the deadlines at the next start', async () => {
    const file = join(tempDir(), 'idlc.db');
    const t1 = await startTestApp({ SQLITE_FILE: file, INACTIVITY_WARNING_DAYS: '0' });
    const c = await hire(t1, 'C1', { employmentType: 'contractor' });
    const e = await hire(t1, 'E1');
    await t1.settle();
    expect(await upcoming(t1)).toEqual([
      { identityId: c, action: 'disable-inactive', dueAt: iso(PROVISIONED + 30 * DAY) },
      { identityId: e, action: 'disable-inactive', dueAt: iso(PROVISIONED + 90 * DAY) },
    ]);
    await closeKeepingData(t1);

    const t2 = await startTestApp({ SQLITE_FILE: file, INACTIVITY_WARNING_DAYS: '0', INACTIVITY_DAYS: '60', INACTIVITY_DAYS_BY_EMPLOYMENT_TYPE: 'contractor=10' });
    try {
      await t2.settle();
      expect(await upcoming(t2)).toEqual([
        { identityId: c, action: 'disable-inactive', dueAt: iso(PROVISIONED + 10 * DAY) },
        { identityId: e, action: 'disable-inactive', dueAt: iso(PROVISIONED + 60 * DAY) },
      ]);
    } finally {
      await closeKeepingData(t2);
    }
  });
});
