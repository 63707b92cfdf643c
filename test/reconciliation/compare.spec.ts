import { IdentityState, initialState } from '@idlc/domain';
import { parseSnapshot, Reconciler } from '@idlc/engine';

const NOW = new Date('2026-03-01T00:00:00.000Z');
const DAY = 86_400_000;
const ago = (days: number, ms = 0) => new Date(NOW.getTime() - days * DAY - ms).toISOString();

let seq = 0;
function identity(o: Partial<IdentityState>): IdentityState {
  const id = `id-${String(++seq).padStart(3, '0')}`;
  return {
    ...initialState(id),
    revision: 3,
    account: 'active',
    employment: o.employeeId ? 'active' : 'none',
    keys: o.employeeId ? [`hr:${o.employeeId}`] : [],
    provisionedAt: ago(1),
    ...o,
  };
}

const snapshot = (csv: string) => parseSnapshot(Buffer.from(csv), 'hr.csv');
const run = (csv: string, identities: IdentityState[], ghostDays = 30) => {
  const r = new Reconciler(snapshot(csv), { now: NOW, ghostDays });
  identities.forEach((s) => r.observe(s));
  return r.report();
};

describe('Reconciler (pure comparison)', () => {
  it('an enabled account HR does not list, or with no HR link, is an orphan; disabled, pending and deleted ones are not', () => {
    const gone = identity({ employeeId: 'E9' });
    const sso = identity({ keys: ['idp:https://idp|sub-1', 'scim-external:x1'], attributes: { email: 'jit@example.com' } });
    const r = run('employeeId\nE1\n', [
      identity({ employeeId: 'E1' }),
      gone,
      sso,
      identity({ employeeId: 'E8', account: 'disabled', disabledReason: 'terminated', employment: 'terminated' }),
      identity({ employeeId: 'E7', account: 'pending', employment: 'pending' }),
      identity({ employeeId: 'E6', account: 'deleted' }),
    ]);
    expect(r.counts.orphans).toBe(2);
    expect(r.orphans).toEqual([
      { identityId: gone.identityId, employeeId: 'E9', reason: 'not-in-snapshot', linkedBy: ['hr'], email: null, displayName: null, provisionedAt: ago(1), lastLoginAt: null },
      {
        identityId: sso.identityId,
        employeeId: null,
        reason: 'no-hr-link',
        linkedBy: ['sso', 'scim'],
        email: 'jit@example.com',
        displayName: null,
        provisionedAt: ago(1),
        lastLoginAt: null,
      },
    ]);
  });

  it('matches on employee id, never email, including an earlier HR key after a rehire under a new id', () => {
    const rehired = identity({ employeeId: 'E2', keys: ['hr:E1', 'hr:E2'], attributes: { email: 'x@example.com' } });
    const r = run('employeeId,email\nE1,x@example.com\nE3,y@example.com\n', [rehired, identity({ attributes: { email: 'y@example.com' } })]);
    expect(r.orphans.map((o) => o.reason)).toEqual(['no-hr-link']);
    expect(r.missing.map((m) => m.employeeId)).toEqual(['E3']);
    expect(r.counts.drift).toBe(0);
  });

  it('a ghost is enabled, in HR, never logged in and provisioned strictly more than ghostDays ago', () => {
    const old = identity({ employeeId: 'E1', provisionedAt: ago(30, 1) });
    const r = run('employeeId\nE1\nE2\nE3\nE4\nE5\n', [
      old,
      identity({ employeeId: 'E2', provisionedAt: ago(30) }),
      identity({ employeeId: 'E3', provisionedAt: ago(90), lastLoginAt: ago(89) }),
      identity({ employeeId: 'E4', provisionedAt: ago(90), account: 'disabled' }),
      identity({ employeeId: 'E5', provisionedAt: ago(90), account: 'pending' }),
    ]);
    expect(r.ghosts).toEqual([{ identityId: old.identityId, employeeId: 'E1', email: null, displayName: null, provisionedAt: ago(30, 1), daysSinceProvisioned: 30 }]);
    expect(run('employeeId\nE1\n', [identity({ employeeId: 'E1', provisionedAt: ago(3) })], 2).counts.ghosts).toBe(1);
  });

  it('drift compares only attributes the snapshot states; an empty cell means HR holds no value', () => {
    const a = identity({ employeeId: 'E1', attributes: { department: 'Sales', title: 'Rep', costCenter: 'C1', location: 'Oslo' } });
    const b = identity({ employeeId: 'E2', attributes: { department: 'Sales' } });
    const r = run('employeeId,department,title,costCenter\nE1,Finance,Rep,\nE2,Sales,,\n', [a, b]);
    expect(r.drift).toEqual([
      {
        identityId: a.identityId,
        employeeId: 'E1',
        account: 'active',
        differences: [
          { attribute: 'department', engine: 'Sales', snapshot: 'Finance' },
          { attribute: 'costCenter', engine: 'C1', snapshot: null },
        ],
      },
    ]);
    expect(r.counts).toMatchObject({ drift: 1, driftedAttributes: 2 });
    // JSON: a record that leaves a key out says nothing about it.
    const j = new Reconciler(parseSnapshot(Buffer.from('[{"employeeId":"E1","department":"Finance"},{"employeeId":"E2","title":"Boss"}]'), 'x.json'), { now: NOW, ghostDays: 30 });
    [a, b].forEach((s) => j.observe(s));
    expect(j.report().drift.map((d) => [d.employeeId, d.differences.map((x) => x.attribute)])).toEqual([
      ['E1', ['department']],
      ['E2', ['title']],
    ]);
  });

  it('terminated in HR: an enabled account is reported, a disabled one or no account at all is not', () => {
    const on = identity({ employeeId: 'E1', lastLoginAt: ago(2) });
    const r = run('employeeId,status\nE1,terminated\nE2,TERMINATED\nE3,terminated\nE4,pending\n', [
      on,
      identity({ employeeId: 'E2', account: 'disabled', employment: 'terminated' }),
    ]);
    expect(r.terminatedButEnabled).toEqual([{ identityId: on.identityId, employeeId: 'E1', email: null, displayName: null, employment: 'active', lastLoginAt: ago(2) }]);
    expect(r.missing).toEqual([{ employeeId: 'E4', where: 'line 5', status: 'pending', reason: 'no-identity', identityId: null }]);
  });

  it('a deleted account explains a missing person: reported with its id unless HR says terminated', () => {
    const d1 = identity({ employeeId: 'E1', account: 'deleted' });
    const r = run('employeeId,status\nE1,active\nE2,terminated\n', [d1, identity({ employeeId: 'E2', account: 'deleted' })]);
    expect(r.missing).toEqual([{ employeeId: 'E1', where: 'line 2', status: 'active', reason: 'account-deleted', identityId: d1.identityId }]);
    expect(r.identitiesScanned).toBe(2);
  });

  it('the report is the same whatever order identities are read in', () => {
    const ids = [
      identity({ employeeId: 'E3' }),
      identity({ employeeId: 'E1', provisionedAt: ago(60) }),
      identity({ keys: ['idp:i|s'] }),
      identity({ employeeId: 'E2', attributes: { title: 'x' } }),
      identity({ employeeId: 'E9' }),
    ];
    const csv = 'employeeId,title\nE1,\nE2,y\nE3,\n';
    expect(run(csv, [...ids].reverse())).toEqual(run(csv, ids));
  });
});
