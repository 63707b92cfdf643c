import { applyReconciliation, parseSnapshot, reconcile } from '@idlc/engine';
import { startTestApp, TestApp } from '../support/app';

const hire = (employeeId: string) => ({
  eventId: `h-${employeeId}`,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Ada', familyName: employeeId, email: `${employeeId}@example.com`, department: 'Sales', employmentType: 'employee' },
});

/** applyReconciliation in a running server: idempotency per (identity, snapshot), refusals, re-enabled accounts. */
describe('applying a reconciliation through the command path', () => {
  let t: TestApp;
  const ids = new Map<string, string>();
  beforeAll(async () => {
    t = await startTestApp();
    const r = await t.hr({ events: ['E1', 'E2', 'E3', 'E4'].map(hire) });
    r.body.results.forEach((x: { identityId: string }, i: number) => ids.set(`E${i + 1}`, x.identityId));
    await t.settle();
  });
  afterAll(() => t.close());

  it('disables each orphan once; the same snapshot again appends nothing, even for an account re-enabled since', async () => {
    const snapshot = parseSnapshot(Buffer.from('employeeId,department\nE1,Sales\n'), 'hr.csv');
    const report = await reconcile(t.engine, snapshot, { ghostDays: 30 });
    expect(report.orphans.map((o) => o.employeeId)).toEqual(['E2', 'E3', 'E4']);
    // E4 is deleted after the report was made (no HTTP route deletes an HR account: the engine's own path).
    const del = await t.engine.commands.execute(ids.get('E4')!, [{ kind: 'DeleteAccount', reason: 'admin', source: 'admin' }], { metadata: { source: 'test' } });
    expect(del.rejection).toBeUndefined();

    const before = await t.eventCount();
    const first = await applyReconciliation(t.engine, report, { actor: 'cli', correlationId: 'corr-1' });
    expect(first.items.map((i) => [i.employeeId, i.outcome, i.detail])).toEqual([
      ['E2', 'disabled', undefined],
      ['E3', 'disabled', undefined],
      ['E4', 'refused', 'account is deleted'],
    ]);
    expect(first).toMatchObject({ disabled: 2, refused: 1, alreadyApplied: 0, unchanged: 0 });
    expect(await t.eventCount()).toBe(before + 2);

    // An operator re-enables E2 on purpose; re-running the same apply must not undo that.
    expect((await t.post(`/identities/${ids.get('E2')}/enable`, { note: 'contractor, HR record pending' })).status).toBe(200);
    const mid = await t.eventCount();
    const second = await applyReconciliation(t.engine, report, { actor: 'cli' });
    expect(second.items.map((i) => [i.employeeId, i.outcome])).toEqual([
      ['E2', 'already-applied'],
      ['E3', 'already-applied'],
      ['E4', 'refused'],
    ]);
    expect(await t.eventCount()).toBe(mid);
    await t.settle();
    expect((await t.get(`/identities/${ids.get('E2')}`)).body.status).toBe('active');

    // A different snapshot is a new decision: E2 is an orphan again and is disabled again.
    const next = parseSnapshot(Buffer.from('employeeId,department\r\nE1,Sales\r\n'), 'hr.csv');
    expect(next.sha256).not.toBe(snapshot.sha256);
    const report2 = await reconcile(t.engine, next, { ghostDays: 30 });
    expect(report2.orphans.map((o) => o.employeeId)).toEqual(['E2']);
    const third = await applyReconciliation(t.engine, report2, { actor: 'cli' });
    expect(third.items.map((i) => [i.employeeId, i.outcome])).toEqual([['E2', 'disabled']]);
    const history = (await t.get(`/identities/${ids.get('E2')}/history`)).body.events;
    expect(history.filter((e: { type: string }) => e.type === 'AccountDisabled').map((e: any) => [e.data.reason, e.source, e.actor])).toEqual([
      ['reconciliation', 'reconciliation', 'cli'],
      ['reconciliation', 'reconciliation', 'cli'],
    ]);
  });
});
