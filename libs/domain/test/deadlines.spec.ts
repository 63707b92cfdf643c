import { DEFAULT_LIFECYCLE, inactivityDaysFor, initialState, LifecyclePolicy, nextDeadline } from '../src';
import { at, ENGINEER, hiredEngineer, LIFECYCLE, step, T0, types } from './support';

const login = { kind: 'RecordLogin' as const, issuer: 'https://idp', subject: 'ada', protocol: 'oidc' as const };
const ms = (iso: string, delta: number) => new Date(new Date(iso).getTime() + delta).toISOString();

describe('inactivityDaysFor', () => {
  const base = hiredEngineer();
  const withType = (t: string) => ({ ...base, attributes: { ...base.attributes, employmentType: t } });
  const withRole = (s: typeof base, role: string) => ({ ...s, roles: [...s.roles, { role, source: { kind: 'manual' as const }, grantedAt: T0 }] });

  it('uses the default, then the employment type override', () => {
    expect(inactivityDaysFor(base, LIFECYCLE)).toBe(90);
    expect(inactivityDaysFor(withType('contractor'), LIFECYCLE)).toBe(30);
    expect(inactivityDaysFor(withType('intern'), LIFECYCLE)).toBe(90);
  });

  it('a role override applies when stricter; the strictest wins', () => {
    expect(inactivityDaysFor(withRole(base, 'admin'), LIFECYCLE)).toBe(14);
    const p: LifecyclePolicy = { ...LIFECYCLE, inactivityDaysByRole: { admin: 14, auditor: 60, dba: 7 } };
    expect(inactivityDaysFor(withRole(withType('contractor'), 'auditor'), p)).toBe(30);
    expect(inactivityDaysFor(withRole(withRole(base, 'admin'), 'dba'), p)).toBe(7);
  });

  it('0 turns inactivity off; a role override still applies then, a 0 override never loosens', () => {
    const off: LifecyclePolicy = { inactivityDays: 0, retentionDays: 30 };
    expect(inactivityDaysFor(base, off)).toBe(0);
    expect(inactivityDaysFor(withRole(base, 'admin'), { ...off, inactivityDaysByRole: { admin: 14 } })).toBe(14);
    expect(inactivityDaysFor(withRole(base, 'admin'), { ...LIFECYCLE, inactivityDaysByRole: { admin: 0 } })).toBe(90);
    expect(inactivityDaysFor(withType('employee'), { ...LIFECYCLE, inactivityDaysByEmploymentType: { employee: 0 } })).toBe(0);
  });
});

describe('inactivity', () => {
  it('an account provisioned and never used counts from provisioning: warning, then disable', () => {
    const s = hiredEngineer(); // provisioned at T0
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(83), action: 'warn-inactive' });
    expect(step(s, { kind: 'ApplyDueEffects' }, ms(at(83), -1)).d.events).toEqual([]);

    const warned = step(s, { kind: 'ApplyDueEffects' }, at(83));
    expect(warned.d.events).toEqual([{ type: 'InactivityWarningIssued', version: 1, data: { lastActivityAt: T0, disableAt: at(90) } }]);
    expect(nextDeadline(warned.s, LIFECYCLE)).toEqual({ at: at(90), action: 'disable-inactive' });
    // Not warned twice.
    expect(step(warned.s, { kind: 'ApplyDueEffects' }, at(85)).d.events).toEqual([]);

    const disabled = step(warned.s, { kind: 'ApplyDueEffects' }, at(90));
    expect(disabled.d.events).toEqual([{ type: 'AccountDisabled', version: 1, data: { reason: 'inactive', source: 'saga', effectiveAt: at(90) } }]);
    expect(disabled.s).toMatchObject({ account: 'disabled', disabledReason: 'inactive', employment: 'active' });
    expect(nextDeadline(disabled.s, LIFECYCLE)).toBeNull();

    const refused = step(disabled.s, login, at(91));
    expect(refused.d.rejection?.code).toBe('account_disabled');
    expect(types(refused.d)).toEqual(['LoginRefused']);
  });

  it('a scheduler that runs late emits the warning and the disable together, in order', () => {
    const { d } = step(hiredEngineer(), { kind: 'ApplyDueEffects' }, at(200));
    expect(types(d)).toEqual(['InactivityWarningIssued', 'AccountDisabled']);
    expect(d.events[1]).toEqual({ type: 'AccountDisabled', version: 1, data: { reason: 'inactive', source: 'saga', effectiveAt: at(90) } });
  });

  it('a login before the deadline moves the deadline', () => {
    const s = step(hiredEngineer(), login, at(50)).s;
    expect(s.lastActivityAt).toBe(at(50));
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(133), action: 'warn-inactive' });
    expect(step(s, { kind: 'ApplyDueEffects' }, at(100)).d.events).toEqual([]);
    expect(types(step(s, { kind: 'ApplyDueEffects' }, at(140)).d)).toEqual(['InactivityWarningIssued', 'AccountDisabled']);
  });

  it('a login after the warning clears it, so the next period warns again', () => {
    const warned = step(hiredEngineer(), { kind: 'ApplyDueEffects' }, at(84)).s;
    expect(warned.inactivityWarnedAt).toBe(at(84));
    const s = step(warned, login, at(86)).s;
    expect(s.inactivityWarnedAt).toBeUndefined();
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(169), action: 'warn-inactive' });
  });

  it('a login arriving after the deadline disables first and is refused', () => {
    const { d } = step(hiredEngineer(), login, at(95));
    expect(types(d)).toEqual(['InactivityWarningIssued', 'AccountDisabled', 'LoginRefused']);
    expect(d.rejection?.code).toBe('account_disabled');
  });

  it('uses the employment type and role overrides; no warning when the policy has none', () => {
    const contractor = step(initialState('c'), { kind: 'Hire', employeeId: 'C1', effectiveAt: T0, attributes: { ...ENGINEER, employmentType: 'contractor' } }, T0).s;
    const noWarn: LifecyclePolicy = { ...LIFECYCLE, inactivityWarningDays: 0 };
    expect(nextDeadline(contractor, noWarn)).toEqual({ at: at(30), action: 'disable-inactive' });
    expect(step(contractor, { kind: 'ApplyDueEffects' }, at(30), { lifecycle: noWarn }).d.events).toEqual([
      { type: 'AccountDisabled', version: 1, data: { reason: 'inactive', source: 'saga', effectiveAt: at(30) } },
    ]);

    const admin = step(hiredEngineer(), { kind: 'GrantRole', role: 'admin', source: { kind: 'manual', by: 'root' } }, T0).s;
    expect(nextDeadline(admin, noWarn)).toEqual({ at: at(14), action: 'disable-inactive' });
  });

  it('inactivity 0 schedules nothing; a warning lead not shorter than the period is skipped', () => {
    expect(nextDeadline(hiredEngineer(), { inactivityDays: 0, retentionDays: 30 })).toBeNull();
    expect(nextDeadline(hiredEngineer(), { inactivityDays: 5, inactivityWarningDays: 5, retentionDays: 30 })).toEqual({ at: at(5), action: 'disable-inactive' });
  });

  it('an admin re-enable restarts the period', () => {
    const disabled = step(hiredEngineer(), { kind: 'ApplyDueEffects' }, at(90)).s;
    const { d, s } = step(disabled, { kind: 'EnableAccount', reason: 'admin', source: 'admin' }, at(100));
    expect(types(d)).toEqual(['AccountEnabled']);
    expect(nextDeadline(s, LIFECYCLE)).toEqual({ at: at(183), action: 'warn-inactive' });
  });

  it('a pending hire is never inactive; the termination deadline wins when earlier', () => {
    const pending = step(initialState('p'), { kind: 'Hire', employeeId: 'P', effectiveAt: at(200), attributes: ENGINEER }, T0).s;
    expect(nextDeadline(pending, LIFECYCLE)).toEqual({ at: at(200), action: 'activate' });
    const leaving = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(20), reason: 'x' }, at(1)).s;
    expect(nextDeadline(leaving, LIFECYCLE)).toEqual({ at: at(20), action: 'terminate' });
    expect(nextDeadline(initialState('none'), LIFECYCLE)).toBeNull();
  });

  it('the default lifecycle is 90 days, contractors 30, warned 7 days ahead, deleted 30 days after leaving', () => {
    expect(DEFAULT_LIFECYCLE).toEqual({ inactivityDays: 90, inactivityDaysByEmploymentType: { contractor: 30 }, inactivityWarningDays: 7, retentionDays: 30 });
  });
});
