import { BirthrightEngine, decide, hrKey, initialState, keyChanges, nextDeadline, decideAll } from '../src';
import { at, ctxAt, ENGINEER, hiredEngineer, LIFECYCLE, roleOps, roles, step, T0, types } from './support';

describe('hire (joiner)', () => {
  it('a hire effective now provisions the account and grants birthright in the same decision', () => {
    const { d, s } = step(initialState('id-1'), { kind: 'Hire', employeeId: 'E1', effectiveAt: T0, attributes: ENGINEER, hrEventId: 'hr-1' }, T0);
    expect(d.rejection).toBeUndefined();
    expect(d.events).toEqual([
      { type: 'IdentityHired', version: 1, data: { employeeId: 'E1', effectiveAt: T0, attributes: ENGINEER, hrEventId: 'hr-1' } },
      { type: 'ExternalKeyLinked', version: 1, data: { key: { kind: 'hr', value: 'E1' } } },
      { type: 'AccountProvisioned', version: 1, data: { source: 'hr', effectiveAt: T0 } },
      { type: 'RoleGranted', version: 1, data: { role: 'employee', source: { kind: 'birthright', ruleId: 'default' } } },
      { type: 'RoleGranted', version: 1, data: { role: 'git', source: { kind: 'birthright', ruleId: 'eng' } } },
      { type: 'RoleGranted', version: 1, data: { role: 'ci', source: { kind: 'birthright', ruleId: 'eng' } } },
    ]);
    expect(s).toMatchObject({ identityId: 'id-1', revision: 5, employeeId: 'E1', employment: 'active', account: 'active', keys: ['hr:E1'] });
    expect(roles(s)).toEqual(['ci@birthright', 'employee@birthright', 'git@birthright']);
    expect(keyChanges(d.events)).toEqual({ claims: ['hr:E1'], releases: [] });
  });

  it('a hire effective in the past also provisions at once', () => {
    const { d } = step(initialState('id-1'), { kind: 'Hire', employeeId: 'E1', effectiveAt: at(-10), attributes: ENGINEER }, T0);
    expect(types(d)).toEqual(['IdentityHired', 'ExternalKeyLinked', 'AccountProvisioned', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
    expect(d.events[2]).toEqual({ type: 'AccountProvisioned', version: 1, data: { source: 'hr', effectiveAt: at(-10) } });
  });

  it('a future-dated hire leaves the account pending with no roles until its date', () => {
    const start = at(14);
    const hired = step(initialState('id-1'), { kind: 'Hire', employeeId: 'E1', effectiveAt: start, attributes: ENGINEER }, T0);
    expect(types(hired.d)).toEqual(['IdentityHired', 'ExternalKeyLinked']);
    expect(hired.s).toMatchObject({ employment: 'pending', account: 'pending', roles: [], pendingActivation: { kind: 'hire', effectiveAt: start } });
    expect(nextDeadline(hired.s, LIFECYCLE)).toEqual({ at: start, action: 'activate' });

    // A login before the start date is refused and recorded.
    const login = step(hired.s, { kind: 'RecordLogin', issuer: 'https://idp', subject: 'ada', protocol: 'oidc' }, at(1));
    expect(login.d.rejection?.code).toBe('not_yet_active');
    expect(types(login.d)).toEqual(['LoginRefused']);

    // One millisecond early: nothing.
    const early = new Date(new Date(start).getTime() - 1).toISOString();
    expect(step(hired.s, { kind: 'ApplyDueEffects' }, early).d.events).toEqual([]);

    const due = step(hired.s, { kind: 'ApplyDueEffects' }, start);
    expect(types(due.d)).toEqual(['AccountProvisioned', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
    expect(due.d.events[0]).toEqual({ type: 'AccountProvisioned', version: 1, data: { source: 'hr', effectiveAt: start } });
    expect(roleOps(due.d)).toEqual(['+employee@birthright:default', '+git@birthright:eng', '+ci@birthright:eng']);
    expect(due.s).toMatchObject({ employment: 'active', account: 'active', pendingActivation: undefined });

    // Applying after the date (late scheduler) gives the same events.
    expect(types(step(hired.s, { kind: 'ApplyDueEffects' }, at(20)).d)).toEqual(types(due.d));
  });

  it('a repeated hire is a no-op; a hire for another employee on an existing identity is refused', () => {
    const s = hiredEngineer();
    expect(decide(s, { kind: 'Hire', employeeId: 'E1', effectiveAt: T0, attributes: ENGINEER }, ctxAt(at(1)))).toEqual({ events: [] });
    const other = decide(s, { kind: 'Hire', employeeId: 'E2', effectiveAt: T0, attributes: ENGINEER }, ctxAt(at(1)));
    expect(other.rejection?.code).toBe('already_exists');
    expect(other.events).toEqual([]);
  });

  it('commands on an identity without events are refused with not_found', () => {
    const d = decide(initialState('nobody'), { kind: 'RecordLogin', issuer: 'i', subject: 's', protocol: 'oidc' }, ctxAt(T0));
    expect(d).toEqual({ events: [], rejection: { code: 'not_found', message: expect.any(String) } });
  });
});

describe('keys and attributes', () => {
  it('an email change is an AttributesChanged on the same identity, never a key', () => {
    const s = hiredEngineer();
    const { d, s: after } = step(s, { kind: 'ChangeAttributes', attributes: { email: 'ada.l@example.com' }, source: 'hr' }, at(1));
    expect(d.events).toEqual([
      { type: 'AttributesChanged', version: 1, data: { changes: { email: { from: 'ada@example.com', to: 'ada.l@example.com' } }, effectiveAt: at(1), source: 'hr' } },
    ]);
    expect(keyChanges(d.events)).toEqual({ claims: [], releases: [] });
    expect(after.identityId).toBe('id-1');
    expect(after.keys).toEqual(['hr:E1']);
    expect(after.attributes.email).toBe('ada.l@example.com');
  });

  it('links an IdP key once and unlinks it', () => {
    const s = hiredEngineer();
    const key = { kind: 'idp' as const, issuer: 'https://idp', value: 'sub-1' };
    const linked = step(s, { kind: 'LinkKey', key }, at(1));
    expect(linked.d.events).toEqual([{ type: 'ExternalKeyLinked', version: 1, data: { key } }]);
    expect(linked.s.keys).toEqual(['hr:E1', 'idp:https://idp|sub-1']);
    expect(step(linked.s, { kind: 'LinkKey', key }, at(1)).d.events).toEqual([]);
    const unlinked = step(linked.s, { kind: 'UnlinkKey', key }, at(2));
    expect(types(unlinked.d)).toEqual(['ExternalKeyUnlinked']);
    expect(keyChanges(unlinked.d.events)).toEqual({ claims: [], releases: ['idp:https://idp|sub-1'] });
    expect(unlinked.s.keys).toEqual(['hr:E1']);
  });

  it('a null attribute clears it', () => {
    const { d, s } = step(hiredEngineer(), { kind: 'ChangeAttributes', attributes: { title: null, givenName: null }, source: 'hr' }, at(1));
    // title was never set: only givenName changes.
    expect(d.events).toEqual([
      { type: 'AttributesChanged', version: 1, data: { changes: { givenName: { from: 'Ada', to: null } }, effectiveAt: at(1), source: 'hr' } },
    ]);
    expect(s.attributes.givenName).toBeUndefined();
  });
});

describe('mover', () => {
  it('revokes the roles of a rule that no longer matches and grants the newly matching ones', () => {
    const { d, s } = step(hiredEngineer(), { kind: 'ChangeAttributes', attributes: { department: 'sales' }, source: 'hr' }, at(3));
    expect(d.events[0]).toEqual({
      type: 'AttributesChanged',
      version: 1,
      data: { changes: { department: { from: 'Engineering', to: 'sales' } }, effectiveAt: at(3), source: 'hr' },
    });
    expect(roleOps(d)).toEqual(['-git@birthright:eng(recomputed)', '-ci@birthright:eng(recomputed)', '+crm@birthright:sales']);
    expect(roles(s)).toEqual(['crm@birthright', 'employee@birthright']);
  });

  it('never touches manual or scim-group grants, even of a role birthright also granted', () => {
    let s = hiredEngineer();
    s = step(s, { kind: 'GrantRole', role: 'git', source: { kind: 'manual', by: 'admin' } }, at(1)).s;
    s = step(s, { kind: 'GrantRole', role: 'ci', source: { kind: 'scim-group', groupId: 'g1' } }, at(1)).s;
    s = step(s, { kind: 'GrantRole', role: 'prod-db', source: { kind: 'manual', by: 'admin' } }, at(1)).s;
    const { d, s: after } = step(s, { kind: 'ChangeAttributes', attributes: { department: 'Finance' }, source: 'hr' }, at(2));
    expect(roleOps(d)).toEqual(['-git@birthright:eng(recomputed)', '-ci@birthright:eng(recomputed)']);
    expect(roles(after)).toEqual(['ci@scim-group', 'employee@birthright', 'git@manual', 'prod-db@manual']);

    // Recomputation (policy reconcile) leaves them alone too.
    expect(step(after, { kind: 'RecomputeBirthright' }, at(3)).d.events).toEqual([]);
  });

  it('a role that another, still matching rule grants is re-attributed to that rule in the same decision', () => {
    const birthright = BirthrightEngine.from({
      version: 1,
      defaultRoles: [],
      rules: [
        { id: 'berlin', when: { attribute: 'location', equals: 'Berlin' }, roles: ['vpn', 'de-wiki'] },
        { id: 'europe', when: { attribute: 'location', in: ['Berlin', 'Paris'] }, roles: ['vpn'] },
      ],
    });
    const hired = step(initialState('v'), { kind: 'Hire', employeeId: 'V', effectiveAt: T0, attributes: { location: 'Berlin' } }, T0, { birthright });
    expect(roleOps(hired.d)).toEqual(['+vpn@birthright:berlin', '+de-wiki@birthright:berlin']);
    const moved = step(hired.s, { kind: 'ChangeAttributes', attributes: { location: 'Paris' }, source: 'hr' }, at(1), { birthright });
    expect(roleOps(moved.d)).toEqual(['-vpn@birthright:berlin(recomputed)', '-de-wiki@birthright:berlin(recomputed)', '+vpn@birthright:europe']);
    expect(roles(moved.s)).toEqual(['vpn@birthright']);
    expect(moved.s.roles.find((g) => g.role === 'vpn')!.source).toEqual({ kind: 'birthright', ruleId: 'europe' });
  });

  it('an unchanged attribute set emits nothing', () => {
    const s = hiredEngineer();
    expect(decide(s, { kind: 'ChangeAttributes', attributes: { department: 'Engineering', email: 'ada@example.com' }, source: 'hr' }, ctxAt(at(1)))).toEqual({ events: [] });
  });

  it('a change that matches no other rule only records the attributes', () => {
    const { d } = step(hiredEngineer(), { kind: 'ChangeAttributes', attributes: { location: 'Berlin' }, source: 'scim' }, at(1));
    expect(types(d)).toEqual(['AttributesChanged']);
  });

  it('SSO login attributes that change the department recompute birthright', () => {
    const { d, s } = step(hiredEngineer(), { kind: 'RecordLogin', issuer: 'i', subject: 's', protocol: 'saml', attributes: { title: 'Head of Platform' } }, at(1));
    expect(types(d)).toEqual(['LoginRecorded', 'AttributesChanged', 'RoleGranted']);
    expect(roleOps(d)).toEqual(['+approver@birthright:heads']);
    expect(s.lastLoginAt).toBe(at(1));
  });
});

describe('termination (leaver)', () => {
  const login = { kind: 'RecordLogin' as const, issuer: 'https://idp', subject: 'ada', protocol: 'oidc' as const };

  function terminatedLater() {
    let s = hiredEngineer();
    s = step(s, { kind: 'GrantRole', role: 'prod-db', source: { kind: 'manual', by: 'admin' } }, at(1)).s;
    s = step(s, { kind: 'GrantRole', role: 'wiki', source: { kind: 'scim-group', groupId: 'g1' } }, at(1)).s;
    return step(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'resigned', hrEventId: 'hr-9' }, at(2));
  }

  it('a future-dated termination records only IdentityTerminated; the account stays usable until the date', () => {
    const { d, s } = terminatedLater();
    expect(d.events).toEqual([{ type: 'IdentityTerminated', version: 1, data: { effectiveAt: at(10), reason: 'resigned', hrEventId: 'hr-9' } }]);
    expect(s).toMatchObject({ account: 'active', employment: 'active', termination: { effectiveAt: at(10), reason: 'resigned', applied: false } });
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(10), action: 'terminate' });

    const l = step(s, login, at(9));
    expect(l.d.rejection).toBeUndefined();
    expect(types(l.d)).toEqual(['LoginRecorded']);
  });

  it('at the date the account is disabled and every role (whatever its source) revoked', () => {
    const { s } = terminatedLater();
    expect(step(s, { kind: 'ApplyDueEffects' }, new Date(new Date(at(10)).getTime() - 1).toISOString()).d.events).toEqual([]);
    const due = step(s, { kind: 'ApplyDueEffects' }, at(10));
    expect(due.d.events[0]).toEqual({ type: 'AccountDisabled', version: 1, data: { reason: 'terminated', source: 'saga', effectiveAt: at(10) } });
    expect(roleOps(due.d).sort()).toEqual([
      '-ci@birthright:eng(terminated)',
      '-employee@birthright:default(terminated)',
      '-git@birthright:eng(terminated)',
      '-prod-db@manual(terminated)',
      '-wiki@scim-group:g1(terminated)',
    ]);
    expect(due.s).toMatchObject({ account: 'disabled', employment: 'terminated', disabledReason: 'terminated', roles: [] });
    expect(due.s.termination?.applied).toBe(true);
  });

  it('a login arriving after the date applies the termination and is refused with a LoginRefused to record', () => {
    const { s } = terminatedLater();
    const { d, s: after } = step(s, login, at(11));
    expect(d.rejection?.code).toBe('terminated');
    expect(types(d)).toEqual(['AccountDisabled', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'LoginRefused']);
    expect(d.events[6]).toEqual({
      type: 'LoginRefused',
      version: 1,
      data: { at: at(11), issuer: 'https://idp', subject: 'ada', protocol: 'oidc', reason: 'account disabled (terminated)' },
    });
    expect(after.roles).toEqual([]);

    // And every later login too.
    const again = step(after, login, at(12));
    expect(again.d.rejection?.code).toBe('terminated');
    expect(types(again.d)).toEqual(['LoginRefused']);
  });

  it('a termination effective now applies at once', () => {
    const { d, s } = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(1), reason: 'dismissed' }, at(1));
    expect(types(d)).toEqual(['IdentityTerminated', 'AccountDisabled', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked']);
    expect(s).toMatchObject({ employment: 'terminated', account: 'disabled', roles: [] });
  });

  it('a later termination with another date moves the deadline, earlier or later', () => {
    const { s } = terminatedLater();
    const later = step(s, { kind: 'Terminate', effectiveAt: at(20), reason: 'resigned' }, at(3));
    expect(types(later.d)).toEqual(['IdentityTerminated']);
    expect(nextDeadline(later.s, LIFECYCLE)).toEqual({ at: at(20), action: 'terminate' });
    // The old date passes without effect.
    expect(step(later.s, { kind: 'ApplyDueEffects' }, at(15)).d.events).toEqual([]);

    const earlier = step(later.s, { kind: 'Terminate', effectiveAt: at(5), reason: 'resigned' }, at(4));
    expect(nextDeadline(earlier.s, LIFECYCLE)).toEqual({ at: at(5), action: 'terminate' });
    expect(types(step(earlier.s, { kind: 'ApplyDueEffects' }, at(5)).d)[0]).toBe('AccountDisabled');

    // The same date again is a no-op.
    expect(decide(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'resigned' }, ctxAt(at(3)))).toEqual({ events: [] });
  });

  it('a different termination date after the termination took effect is refused', () => {
    const s = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(1), reason: 'x' }, at(1)).s;
    expect(decide(s, { kind: 'Terminate', effectiveAt: at(1), reason: 'x' }, ctxAt(at(2)))).toEqual({ events: [] });
    expect(decide(s, { kind: 'Terminate', effectiveAt: at(3), reason: 'x' }, ctxAt(at(2))).rejection?.code).toBe('terminated');
  });

  it('a terminated identity cannot be re-enabled or granted roles', () => {
    const s = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(1), reason: 'x' }, at(1)).s;
    expect(decide(s, { kind: 'EnableAccount', reason: 'admin', source: 'admin' }, ctxAt(at(2))).rejection?.code).toBe('terminated');
    expect(decide(s, { kind: 'GrantRole', role: 'x', source: { kind: 'manual' } }, ctxAt(at(2))).rejection?.code).toBe('terminated');
    expect(decide(s, { kind: 'ChangeAttributes', attributes: { department: 'Sales' }, source: 'hr' }, ctxAt(at(2))).events.map((e) => e.type)).toEqual([
      'AttributesChanged',
    ]);
  });

  it('retention: the account is deleted retentionDays after the termination took effect', () => {
    const { s } = terminatedLater();
    const applied = step(s, { kind: 'ApplyDueEffects' }, at(10)).s;
    expect(nextDeadline(applied, LIFECYCLE)).toEqual({ at: at(40), action: 'delete' });
    expect(step(applied, { kind: 'ApplyDueEffects' }, new Date(new Date(at(40)).getTime() - 1).toISOString()).d.events).toEqual([]);
    const del = step(applied, { kind: 'ApplyDueEffects' }, at(40));
    expect(del.d.events).toEqual([{ type: 'AccountDeleted', version: 1, data: { reason: 'retention', source: 'saga' } }]);
    expect(del.s).toMatchObject({ account: 'deleted', deletedAt: at(40), employment: 'terminated' });
    expect(nextDeadline(del.s, LIFECYCLE)).toBeNull();

    // Long after both dates, one ApplyDueEffects does termination and deletion in order.
    const both = step(s, { kind: 'ApplyDueEffects' }, at(100));
    expect(types(both.d)).toEqual(['AccountDisabled', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'AccountDeleted']);

    const refused = step(del.s, login, at(41));
    expect(refused.d.rejection?.code).toBe('account_deleted');
    expect(types(refused.d)).toEqual(['LoginRefused']);
  });

  it('a termination dated before a future hire start never activates the account, and retention still deletes it', () => {
    let s = step(initialState('id-1'), { kind: 'Hire', employeeId: 'E1', effectiveAt: at(10), attributes: ENGINEER }, T0).s;
    s = step(s, { kind: 'Terminate', effectiveAt: at(5), reason: 'offer withdrawn' }, at(1)).s;
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(5), action: 'terminate' });
    const term = step(s, { kind: 'ApplyDueEffects' }, at(5));
    expect(types(term.d)).toEqual(['AccountDisabled']);
    expect(term.s).toMatchObject({ employment: 'terminated', account: 'disabled', roles: [] });

    // The hire date passes: nothing is provisioned, no role is granted.
    const hireDate = step(term.s, { kind: 'ApplyDueEffects' }, at(10));
    expect(hireDate.d.events).toEqual([]);
    expect(hireDate.s).toMatchObject({ employment: 'terminated', account: 'disabled', roles: [] });
    expect(nextDeadline(hireDate.s, LIFECYCLE)).toEqual({ at: at(35), action: 'delete' });
    expect(types(step(hireDate.s, { kind: 'ApplyDueEffects' }, at(35)).d)).toEqual(['AccountDeleted']);
  });

  it('a termination on the same day as a future hire start: terminated, not activated', () => {
    let s = step(initialState('id-1'), { kind: 'Hire', employeeId: 'E1', effectiveAt: at(10), attributes: ENGINEER }, T0).s;
    s = step(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'no show' }, at(1)).s;
    const { d, s: after } = step(s, { kind: 'ApplyDueEffects' }, at(10));
    expect(types(d)).toEqual(['AccountDisabled']);
    expect(after).toMatchObject({ employment: 'terminated', account: 'disabled', roles: [] });
  });

  it('an account deleted by an admin stays deleted when the termination takes effect (no second deletion)', () => {
    let s = hiredEngineer();
    s = step(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'x' }, at(1)).s;
    const del = step(s, { kind: 'DeleteAccount', reason: 'admin', source: 'admin' }, at(2));
    expect(types(del.d)).toEqual(['RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'AccountDeleted']);
    const term = step(del.s, { kind: 'ApplyDueEffects' }, at(10));
    expect(term.d.events).toEqual([
      { type: 'AccountDisabled', version: 1, data: { reason: 'terminated', source: 'saga', effectiveAt: at(10), note: 'account already deleted' } },
    ]);
    expect(term.s).toMatchObject({ account: 'deleted', employment: 'terminated' });
    expect(step(term.s, { kind: 'ApplyDueEffects' }, at(100)).d.events).toEqual([]);
    expect(step(term.s, login, at(11)).d.rejection?.code).toBe('account_deleted');
  });
});

describe('rehire', () => {
  function terminatedAt(days: number) {
    let s = hiredEngineer();
    s = step(s, { kind: 'Terminate', effectiveAt: at(days), reason: 'resigned' }, at(1)).s;
    return step(s, { kind: 'ApplyDueEffects' }, at(days)).s;
  }

  it('reuses the identity: IdentityRehired, account re-enabled and birthright re-granted', () => {
    const s = terminatedAt(10);
    const { d, s: after } = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(20), hrEventId: 'hr-2' }, at(20));
    expect(d.events.slice(0, 2)).toEqual([
      { type: 'IdentityRehired', version: 1, data: { employeeId: 'E1', effectiveAt: at(20), hrEventId: 'hr-2' } },
      { type: 'AccountEnabled', version: 1, data: { reason: 'rehire', source: 'hr' } },
    ]);
    expect(roleOps(d)).toEqual(['+employee@birthright:default', '+git@birthright:eng', '+ci@birthright:eng']);
    expect(after).toMatchObject({ identityId: 'id-1', employment: 'active', account: 'active', keys: ['hr:E1'], termination: undefined, pendingActivation: undefined });
    expect(after.revision).toBeGreaterThan(s.revision);
    expect(after.createdAt).toBe(s.createdAt);
  });

  it('a Hire for a terminated identity is treated as a rehire', () => {
    const s = terminatedAt(10);
    const d = decide(s, { kind: 'Hire', employeeId: 'E1', effectiveAt: at(20), attributes: ENGINEER }, ctxAt(at(20)));
    expect(types(d)[0]).toBe('IdentityRehired');
  });

  it('a rehire under a new employee id links the new hr key to the same identity', () => {
    const s = terminatedAt(10);
    const { d, s: after } = step(s, { kind: 'Rehire', employeeId: 'E77', effectiveAt: at(20), attributes: { ...ENGINEER, department: 'Sales' } }, at(20));
    expect(types(d)).toEqual(['ExternalKeyLinked', 'IdentityRehired', 'AttributesChanged', 'AccountEnabled', 'RoleGranted', 'RoleGranted']);
    expect(keyChanges(d.events).claims).toEqual(['hr:E77']);
    expect(roleOps(d)).toEqual(['+employee@birthright:default', '+crm@birthright:sales']);
    expect(after.keys).toEqual(['hr:E1', 'hr:E77']);
  });

  it('a future-dated rehire waits for its date, and cancels the pending deletion', () => {
    const s = terminatedAt(10); // deletion due at day 40
    const r = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(60) }, at(15));
    expect(types(r.d)).toEqual(['IdentityRehired']);
    expect(nextDeadline(r.s, LIFECYCLE)).toEqual({ at: at(60), action: 'activate' });
    const afterRetention = step(r.s, { kind: 'ApplyDueEffects' }, at(45));
    expect(afterRetention.d.events).toEqual([]);
    const on = step(r.s, { kind: 'ApplyDueEffects' }, at(60));
    expect(types(on.d)).toEqual(['AccountEnabled', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
    expect(on.s).toMatchObject({ employment: 'active', account: 'active' });
    // Never deleted later either (only inactivity is scheduled now).
    expect(nextDeadline(on.s, LIFECYCLE)?.action).toBe('warn-inactive');
  });

  it('no birthright is granted between a future rehire and its date, even on an attribute change', () => {
    const s = terminatedAt(10);
    const r = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(60) }, at(15)).s;
    const moved = step(r, { kind: 'ChangeAttributes', attributes: { department: 'Sales' }, source: 'hr' }, at(20));
    expect(types(moved.d)).toEqual(['AttributesChanged']);
    expect(moved.s.roles).toEqual([]);
    expect(step(moved.s, { kind: 'RecomputeBirthright' }, at(21)).d.events).toEqual([]);
    const login = step(moved.s, { kind: 'RecordLogin', issuer: 'i', subject: 's', protocol: 'oidc' }, at(22));
    expect(login.d.rejection?.code).toBe('account_disabled');
    const on = step(moved.s, { kind: 'ApplyDueEffects' }, at(60));
    expect(roleOps(on.d)).toEqual(['+employee@birthright:default', '+crm@birthright:sales']);
  });

  it('a rehire after deletion provisions the account again', () => {
    const s = step(terminatedAt(10), { kind: 'ApplyDueEffects' }, at(40)).s;
    expect(s.account).toBe('deleted');
    const { d, s: after } = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(50) }, at(50));
    expect(types(d)).toEqual(['IdentityRehired', 'AccountProvisioned', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
    expect(after).toMatchObject({ account: 'active', employment: 'active', deletedAt: undefined });
  });

  it('a rehire before a pending termination took effect cancels the termination', () => {
    let s = hiredEngineer();
    s = step(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'resigned' }, at(1)).s;
    const { d, s: after } = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(5) }, at(5));
    expect(d.rejection).toBeUndefined();
    expect(d.events).toEqual([
      { type: 'IdentityRehired', version: 1, data: { employeeId: 'E1', effectiveAt: at(5) } },
      { type: 'AccountEnabled', version: 1, data: { reason: 'rehire', source: 'hr' } },
    ]);
    expect(roleOps(d)).toEqual([]);
    expect(after).toMatchObject({ account: 'active', employment: 'active', termination: undefined });
    expect(roles(after)).toEqual(['ci@birthright', 'employee@birthright', 'git@birthright']);

    // The state the engine folds must be the state the decision saw: nothing more is due now.
    expect(step(after, { kind: 'ApplyDueEffects' }, at(5)).d.events).toEqual([]);
    // The old termination date passes without effect.
    const later = step(after, { kind: 'ApplyDueEffects' }, at(11));
    expect(later.d.events).toEqual([]);
    expect(step(later.s, { kind: 'RecordLogin', issuer: 'i', subject: 's', protocol: 'oidc' }, at(12)).d.rejection).toBeUndefined();
  });

  it('a future-dated rehire before a pending termination cancels it at once; the rehire date changes nothing', () => {
    let s = hiredEngineer();
    s = step(s, { kind: 'Terminate', effectiveAt: at(10), reason: 'resigned' }, at(1)).s;
    const r = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(20) }, at(5));
    expect(types(r.d)).toEqual(['IdentityRehired']);
    expect(r.s).toMatchObject({ account: 'active', termination: undefined });
    expect(nextDeadline(r.s, LIFECYCLE)).toEqual({ at: at(20), action: 'activate' });
    expect(step(r.s, { kind: 'ApplyDueEffects' }, at(11)).d.events).toEqual([]);
    expect(step(r.s, { kind: 'RecordLogin', issuer: 'i', subject: 's', protocol: 'oidc' }, at(12)).d.rejection).toBeUndefined();
    const on = step(r.s, { kind: 'ApplyDueEffects' }, at(20));
    expect(types(on.d)).toEqual(['AccountEnabled']);
    expect(roles(on.s)).toEqual(['ci@birthright', 'employee@birthright', 'git@birthright']);
    // The repeated HR message is a no-op while the rehire is pending.
    expect(decide(r.s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(20) }, ctxAt(at(6)))).toEqual({ events: [] });
  });

  it('a rehire of an identity never terminated is refused', () => {
    const d = decide(hiredEngineer(), { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(2) }, ctxAt(at(2)));
    expect(d.rejection?.code).toBe('not_terminated');
    expect(d.events).toEqual([]);
  });
});

describe('decideAll', () => {
  it('decides in order on the folded state and stops at the first refusal, keeping earlier events', () => {
    const s = hiredEngineer();
    const key = { kind: 'idp' as const, issuer: 'https://idp', value: 'ada' };
    const ok = decideAll(s, [{ kind: 'LinkKey', key }, { kind: 'LinkKey', key }, { kind: 'RecordLogin', issuer: 'https://idp', subject: 'ada', protocol: 'oidc' }], ctxAt(at(1)));
    expect(ok.rejection).toBeUndefined();
    expect(ok.events.map((e) => e.type)).toEqual(['ExternalKeyLinked', 'LoginRecorded']);

    const refused = decideAll(s, [{ kind: 'LinkKey', key }, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(1) }, { kind: 'LinkKey', key: hrKey('x') }], ctxAt(at(1)));
    expect(refused.rejection?.code).toBe('not_terminated');
    expect(refused.events.map((e) => e.type)).toEqual(['ExternalKeyLinked']);
  });

  it('a login as the holder of its IdP key is refused, with nothing to record, by an identity that does not hold the key', () => {
    const s = hiredEngineer();
    const key = { kind: 'idp' as const, issuer: 'https://idp', value: 'ada' };
    const login = { kind: 'RecordLogin' as const, issuer: 'https://idp', subject: 'ada', protocol: 'oidc' as const, asKeyHolder: true };
    expect(decide(s, login, ctxAt(at(1)))).toEqual({ events: [], rejection: { code: 'key_not_held', message: expect.stringContaining('https://idp subject ada') } });
    const linked = decideAll(s, [{ kind: 'LinkKey', key }, login], ctxAt(at(1)));
    expect(linked.rejection).toBeUndefined();
    expect(linked.events.map((e) => e.type)).toEqual(['ExternalKeyLinked', 'LoginRecorded']);
    // Another subject of the same issuer is another key.
    expect(decideAll(s, [{ kind: 'LinkKey', key }, { ...login, subject: 'bob' }], ctxAt(at(1))).rejection?.code).toBe('key_not_held');
    // Without asKeyHolder (e.g. a caller that chose the identity otherwise) the key is not asked for.
    expect(decide(s, { ...login, asKeyHolder: undefined }, ctxAt(at(1))).events.map((e) => e.type)).toEqual(['LoginRecorded']);
  });

  it('ExpectRevision refuses a stale revision before applying anything', () => {
    const s = hiredEngineer();
    expect(decide(s, { kind: 'ExpectRevision', revision: s.revision }, ctxAt(at(1000)))).toEqual({ events: [] });
    expect(decide(s, { kind: 'ExpectRevision', revision: s.revision - 1 }, ctxAt(at(1000)))).toEqual({ events: [], rejection: { code: 'stale', message: expect.any(String) } });
  });
});

describe('login recording interval (lifecycle.loginRecordIntervalSeconds)', () => {
  const login = { kind: 'RecordLogin' as const, issuer: 'https://idp', subject: 'ada', protocol: 'oidc' as const };
  const throttled = { lifecycle: { ...LIFECYCLE, loginRecordIntervalSeconds: 300 } };
  const plus = (base: string, ms: number) => new Date(new Date(base).getTime() + ms).toISOString();

  it('records the first login, skips repeats of the same subject inside the interval, records again at the interval', () => {
    const first = step(hiredEngineer(), login, at(1), throttled);
    expect(types(first.d)).toEqual(['LoginRecorded']);
    expect(first.s.lastLoginKey).toBe('idp:https://idp|ada');
    const inside = step(first.s, login, plus(at(1), 299_999), throttled);
    expect(inside.d).toEqual({ events: [] });
    expect(types(step(first.s, login, plus(at(1), 300_000), throttled).d)).toEqual(['LoginRecorded']);
    // Without the policy (or at 0) every login is recorded.
    expect(types(step(first.s, login, plus(at(1), 1_000)).d)).toEqual(['LoginRecorded']);
    expect(types(step(first.s, login, plus(at(1), 1_000), { lifecycle: { ...LIFECYCLE, loginRecordIntervalSeconds: 0 } }).d)).toEqual(['LoginRecorded']);
  });

  it('always records a login through another subject, one that clears an inactivity warning, and what a login changes', () => {
    const first = step(hiredEngineer(), login, at(1), throttled);
    const soon = plus(at(1), 60_000);
    expect(types(step(first.s, { ...login, subject: 'ada-2' }, soon, throttled).d)).toEqual(['LoginRecorded']);
    expect(types(step(first.s, { ...login, issuer: 'https://other' }, soon, throttled).d)).toEqual(['LoginRecorded']);
    const warned = { ...first.s, inactivityWarnedAt: soon };
    expect(types(step(warned, login, soon, throttled).d)).toEqual(['LoginRecorded']);
    const moved = step(first.s, { ...login, attributes: { department: 'Finance' } }, soon, throttled);
    expect(types(moved.d)[0]).toBe('AttributesChanged');
    expect(types(moved.d)).not.toContain('LoginRecorded');
    // A clock that went backwards is not "inside the interval".
    expect(types(step(first.s, login, plus(at(1), -1_000), throttled).d)).toEqual(['LoginRecorded']);
  });

  it('never skips a refusal: a disabled account inside the interval is refused and the attempt recorded', () => {
    const first = step(hiredEngineer(), login, at(1), throttled);
    const disabled = step(first.s, { kind: 'DisableAccount', reason: 'admin', source: 'admin' }, plus(at(1), 1_000), throttled);
    const refused = step(disabled.s, login, plus(at(1), 2_000), throttled);
    expect(refused.d.rejection?.code).toBe('account_disabled');
    expect(types(refused.d)).toEqual(['LoginRefused']);
  });
});
