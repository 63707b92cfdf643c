import { ERASED_VALUE, initialState, keyChanges, keyString, mapPersonalValues, nextDeadline, parseKeyString, ExternalKey, IdentityCommand } from '../src';
import { at, ENGINEER, hiredEngineer, LIFECYCLE, roleOps, step, T0, types } from './support';

const ERASE: IdentityCommand = { kind: 'EraseIdentity', reason: 'ticket 42', requestedBy: 'admin' };

describe('EraseIdentity', () => {
  it('refuses an active account, a pending hire and a disabled account waiting for a rehire, appending nothing', () => {
    const active = step(hiredEngineer(), ERASE, at(1));
    expect(active.d).toEqual({
      events: [],
      rejection: { code: 'account_active', message: 'identity id-1 has an active account: disable or terminate it before erasing its personal data' },
    });
    const pending = step(initialState('id-2'), { kind: 'Hire', employeeId: 'E2', effectiveAt: at(10), attributes: ENGINEER }, T0);
    expect(step(pending.s, ERASE, at(1)).d.rejection).toEqual({
      code: 'account_active',
      message: `identity id-2 has a hire pending for ${at(10)}: disable or terminate it before erasing its personal data`,
    });
    let s = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(1), reason: 'resigned' }, at(1)).s;
    s = step(s, { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(20) }, at(2)).s;
    expect(s).toMatchObject({ account: 'disabled', pendingActivation: { kind: 'rehire' } });
    expect(step(s, ERASE, at(3)).d.rejection?.code).toBe('account_active');
  });

  it('on a disabled account: revokes what is left, releases every key, records IdentityErased, then deletes the account', () => {
    let s = step(hiredEngineer(), { kind: 'LinkKey', key: { kind: 'idp', issuer: 'https://idp', value: 'auth0|ada' } }, T0).s;
    s = step(s, { kind: 'DisableAccount', reason: 'admin', source: 'admin' }, at(1)).s;
    expect(s.roles.length).toBe(3);
    const { d, s: erased } = step(s, ERASE, at(2));
    expect(d.rejection).toBeUndefined();
    expect(types(d)).toEqual(['RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'ExternalKeyUnlinked', 'ExternalKeyUnlinked', 'IdentityErased', 'AccountDeleted']);
    expect(roleOps(d)).toEqual(['-employee@birthright:default(account-deleted)', '-git@birthright:eng(account-deleted)', '-ci@birthright:eng(account-deleted)']);
    expect(d.events.slice(-2)).toEqual([
      { type: 'IdentityErased', version: 1, data: { reason: 'ticket 42', requestedBy: 'admin' } },
      { type: 'AccountDeleted', version: 1, data: { reason: 'erasure', source: 'admin' } },
    ]);
    expect(keyChanges(d.events)).toEqual({ claims: [], releases: ['hr:E1', 'idp:https://idp|auth0|ada'] });
    expect(erased).toMatchObject({
      account: 'deleted',
      erasedAt: at(2),
      keys: [],
      roles: [],
      attributes: { givenName: ERASED_VALUE, familyName: ERASED_VALUE, email: ERASED_VALUE, department: 'Engineering', employmentType: 'employee' },
    });
    expect(nextDeadline(erased, LIFECYCLE)).toBeNull();
  });

  it('on a terminated (deleted after retention) identity: only IdentityErased; repeated, nothing', () => {
    let s = step(hiredEngineer(), { kind: 'Terminate', effectiveAt: at(1), reason: 'resigned' }, at(1)).s;
    s = step(s, { kind: 'ApplyDueEffects' }, at(40)).s;
    expect(s).toMatchObject({ account: 'deleted', keys: ['hr:E1'] });
    const first = step(s, ERASE, at(41));
    expect(types(first.d)).toEqual(['ExternalKeyUnlinked', 'IdentityErased']);
    expect(step(first.s, ERASE, at(42)).d).toEqual({ events: [] });
  });

  it('an erased identity refuses every other command and appends nothing (no refused-login record either)', () => {
    let s = step(hiredEngineer(), { kind: 'DisableAccount', reason: 'admin', source: 'admin' }, at(1)).s;
    s = step(s, ERASE, at(2)).s;
    const cmds: IdentityCommand[] = [
      { kind: 'ChangeAttributes', attributes: { email: 'new@example.com' }, source: 'hr' },
      { kind: 'EnableAccount', reason: 'admin', source: 'admin' },
      { kind: 'RecordLogin', issuer: 'https://idp', subject: 'ada', protocol: 'oidc' },
      { kind: 'Rehire', employeeId: 'E1', effectiveAt: at(3) },
      { kind: 'Hire', employeeId: 'E1', effectiveAt: at(3), attributes: ENGINEER },
      { kind: 'GrantRole', role: 'wiki', source: { kind: 'manual' } },
      { kind: 'ApplyDueEffects' },
    ];
    for (const cmd of cmds) {
      expect([cmd.kind, step(s, cmd, at(3)).d]).toEqual([cmd.kind, { events: [], rejection: { code: 'erased', message: `identity id-1 was erased on ${at(2)}; it accepts no further changes` } }]);
    }
  });
});

describe('personal values in event data', () => {
  const tag = (v: string, path: string) => `<${path}=${v}>`;

  it('are exactly the personal attributes, personal changes, SCIM userName keys and personal SCIM paths', () => {
    expect(mapPersonalValues('IdentityHired', { employeeId: 'E1', effectiveAt: T0, attributes: { ...ENGINEER, managerId: 'E0', managerName: 'Babbage' } }, tag)).toEqual({
      employeeId: 'E1',
      effectiveAt: T0,
      attributes: {
        givenName: '<attributes.givenName=Ada>',
        familyName: '<attributes.familyName=Lovelace>',
        email: '<attributes.email=ada@example.com>',
        department: 'Engineering',
        employmentType: 'employee',
        managerId: 'E0',
        managerName: '<attributes.managerName=Babbage>',
      },
    });
    expect(
      mapPersonalValues('AttributesChanged', { changes: { phone: { from: null, to: '+1' }, title: { from: 'a', to: 'b' }, email: { from: 'x@y', to: null } }, effectiveAt: T0, source: 'hr' }, tag),
    ).toEqual({ changes: { phone: { from: null, to: '<changes.phone.to=+1>' }, title: { from: 'a', to: 'b' }, email: { from: '<changes.email.from=x@y>', to: null } }, effectiveAt: T0, source: 'hr' });
    expect(mapPersonalValues('ExternalKeyLinked', { key: { kind: 'scim-username', value: 'ada@example.com' } }, tag)).toEqual({ key: { kind: 'scim-username', value: '<key.value=ada@example.com>' } });
    const hr = { key: { kind: 'hr', value: 'E1' } };
    expect(mapPersonalValues('ExternalKeyUnlinked', hr, tag)).toBe(hr);
    const ent = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
    expect(
      mapPersonalValues(
        'ScimResourceReplaced',
        {
          resource: {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            userName: 'ada',
            externalId: 'x1',
            emails: [{ value: 'a@b', type: 'work', primary: true }],
            addresses: [{ streetAddress: '1 Main St', locality: 'London', country: 'UK' }],
            title: 'Engineer',
            [ent]: { department: 'Eng', manager: { value: 'm1', displayName: 'Babbage' } },
            'urn:example:custom': { badge: 'B-7' },
          },
        },
        tag,
      ),
    ).toEqual({
      resource: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: '<resource.userName=ada>',
        externalId: 'x1',
        emails: [{ value: '<resource.emails.value=a@b>', type: 'work', primary: true }],
        addresses: [{ streetAddress: '<resource.addresses.streetAddress=1 Main St>', locality: 'London', country: 'UK' }],
        title: 'Engineer',
        [ent]: { department: 'Eng', manager: { value: 'm1', displayName: `<resource.${ent}.manager.displayName=Babbage>` } },
        // Unknown attributes are personal until proven otherwise.
        'urn:example:custom': { badge: '<resource.urn:example:custom.badge=B-7>' },
      },
    });
    const login = { at: T0, issuer: 'i', subject: 's', protocol: 'oidc' };
    expect(mapPersonalValues('LoginRecorded', login, tag)).toBe(login);
  });

  it('key strings parse back to the key they came from', () => {
    const keys: ExternalKey[] = [
      { kind: 'hr', value: 'E1' },
      { kind: 'idp', issuer: 'https://idp.example.com/realms/x', value: 'auth0|123' },
      { kind: 'scim-external', value: 'ext:1' },
      { kind: 'scim-username', value: 'ada@example.com' },
    ];
    for (const k of keys) expect(parseKeyString(keyString(k))).toEqual(k);
    expect(parseKeyString('nope')).toBeNull();
  });
});
