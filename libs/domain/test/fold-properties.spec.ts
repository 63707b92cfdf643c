import fc from 'fast-check';
import {
  decide,
  ERASED_VALUE,
  evolve,
  PERSONAL_ATTRIBUTES,
  IdentityCommand,
  IdentityEvent,
  IdentityState,
  initialState,
  LifecyclePolicy,
  nextDeadline,
  RoleSource,
  roleSourceKey,
} from '../src';
import { ctxAt, DAY, engine, T0 } from './support';

/**
 * A command as plain data (so a shrunk counterexample reads well): `effectiveInHours` is relative to
 * the moment it is decided, so effective dates follow the clock.
 */
type Desc = { cmd: IdentityCommand; effectiveInHours?: number };
type Spec = { advanceHours: number; desc: Desc };

const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;
const hoursIn = (minDays: number, maxDays: number) => fc.integer({ min: minDays * 24, max: maxDays * 24 });

function build({ cmd, effectiveInHours }: Desc, now: number): IdentityCommand {
  return effectiveInHours === undefined ? cmd : ({ ...cmd, effectiveAt: iso(now + effectiveInHours * HOUR) } as IdentityCommand);
}

const attrValues = fc.record(
  {
    department: fc.constantFrom('Engineering', 'Sales', 'sales', 'Finance', null),
    title: fc.constantFrom('Head of Ops', 'Engineer', null),
    employmentType: fc.constantFrom('employee', 'contractor', null),
    email: fc.constantFrom('a@example.com', 'b@example.com'),
  },
  { requiredKeys: [] },
);
const hireAttrs = fc.record(
  { department: fc.constantFrom('Engineering', 'Sales', 'Finance'), employmentType: fc.constantFrom('employee', 'contractor'), email: fc.constant('a@example.com') },
  { requiredKeys: ['email'] },
);
const role = fc.constantFrom('git', 'crm', 'admin', 'wiki');
/** What callers grant with (admin API, SCIM groups); birthright grants only come from the policy. */
const grantSource = fc.constantFrom<RoleSource>(
  { kind: 'manual', by: 'root' },
  { kind: 'manual', by: 'other' },
  { kind: 'scim-group', groupId: 'g1' },
  { kind: 'scim-group', groupId: 'g2' },
);
const revokeSource = fc.oneof(grantSource, fc.constant<RoleSource>({ kind: 'birthright', ruleId: 'eng' }));
const plain = (cmd: IdentityCommand): Desc => ({ cmd });

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

/** Weighted towards the lifecycle commands whose interleavings matter (dates, due effects). */
const command: fc.Arbitrary<Desc> = fc.oneof(
  w(3, attrValues.map((attributes) => plain({ kind: 'ChangeAttributes', attributes, source: 'hr' }))),
  w(4, hoursIn(-5, 30).map((h) => ({ cmd: { kind: 'Terminate', effectiveAt: '', reason: 'resigned' } as IdentityCommand, effectiveInHours: h }))),
  w(
    4,
    fc
      .tuple(hoursIn(-2, 30), fc.constantFrom('E1', 'E2'), fc.option(hireAttrs, { nil: undefined }))
      .map(([h, employeeId, attributes]) => ({ cmd: { kind: 'Rehire', employeeId, effectiveAt: '', attributes } as IdentityCommand, effectiveInHours: h })),
  ),
  w(1, fc.tuple(hoursIn(-2, 10), hireAttrs).map(([h, attributes]) => ({ cmd: { kind: 'Hire', employeeId: 'E1', effectiveAt: '', attributes } as IdentityCommand, effectiveInHours: h }))),
  w(
    3,
    fc
      .option(attrValues, { nil: undefined })
      .map((attributes) => plain({ kind: 'RecordLogin', issuer: 'https://idp', subject: 's', protocol: 'oidc', attributes: attributes as never })),
  ),
  w(3, fc.tuple(role, grantSource).map(([r, s]) => plain({ kind: 'GrantRole', role: r, source: s }))),
  w(1, fc.tuple(role, revokeSource).map(([r, s]) => plain({ kind: 'RevokeRole', role: r, source: s }))),
  w(1, fc.constant(plain({ kind: 'DisableAccount', reason: 'admin', source: 'admin' }))),
  w(1, fc.constant(plain({ kind: 'EnableAccount', reason: 'admin', source: 'admin' }))),
  w(1, fc.constant(plain({ kind: 'DeleteAccount', reason: 'admin', source: 'admin' }))),
  w(6, fc.constant(plain({ kind: 'ApplyDueEffects' }))),
  w(1, fc.constant(plain({ kind: 'RecomputeBirthright' }))),
  w(1, fc.constant(plain({ kind: 'LinkKey', key: { kind: 'idp', issuer: 'https://idp', value: 's' } }))),
  w(1, fc.constant(plain({ kind: 'UnlinkKey', key: { kind: 'idp', issuer: 'https://idp', value: 's' } }))),
  w(1, fc.constant(plain({ kind: 'EraseIdentity', reason: 'request', requestedBy: 'admin' }))),
);

/** Mostly short steps (same instant, hours, days), sometimes long ones (past retention, inactivity). */
const advanceHours = fc.oneof(
  w(2, fc.constant(0)),
  w(3, fc.integer({ min: 1, max: 72 })),
  w(3, fc.integer({ min: 3 * 24, max: 20 * 24 })),
  w(1, fc.integer({ min: 20 * 24, max: 120 * 24 })),
);
const spec: fc.Arbitrary<Spec> = fc.record({ advanceHours, desc: command });

const first: fc.Arbitrary<Desc> = fc.oneof(
  fc.tuple(hoursIn(-10, 15), hireAttrs).map(([h, attributes]) => ({ cmd: { kind: 'Hire', employeeId: 'E1', effectiveAt: '', attributes } as IdentityCommand, effectiveInHours: h })),
  hireAttrs.map((attributes) =>
    plain({ kind: 'ProvisionAccount', source: 'scim', attributes, keys: [{ kind: 'scim-external', value: 'x1' }], initialRoles: [{ role: 'wiki', by: 'idp' }] }),
  ),
);

const lifecycle: fc.Arbitrary<LifecyclePolicy> = fc.record({
  inactivityDays: fc.constantFrom(0, 10, 90),
  inactivityDaysByEmploymentType: fc.constant({ contractor: 30 }),
  inactivityDaysByRole: fc.constant({ admin: 5 }),
  inactivityWarningDays: fc.constantFrom(0, 3),
  retentionDays: fc.constantFrom(0, 7, 30),
});

const grantKeys = (s: IdentityState) => s.roles.map((g) => `${g.role}|${roleSourceKey(g.source)}`);

interface Recorded {
  event: IdentityEvent;
  at: string;
}

function foldAll(id: string, log: Recorded[]): IdentityState {
  return log.reduce((s, r) => evolve(s, r.event, r.at), initialState(id));
}

/** Event-level checks while folding one decision's events: grants add, revocations remove. */
function foldChecked(s: IdentityState, events: IdentityEvent[], at: string): IdentityState {
  for (const e of events) {
    if (e.type === 'RoleGranted') {
      expect(grantKeys(s)).not.toContain(`${e.data.role}|${roleSourceKey(e.data.source)}`);
    }
    if (e.type === 'RoleRevoked') {
      expect(grantKeys(s)).toContain(`${e.data.role}|${roleSourceKey(e.data.source)}`);
    }
    s = evolve(s, e, at);
  }
  return s;
}

describe('fold properties over random command sequences', () => {
  it('terminated identities hold no roles, grants are unique, folds are deterministic, nothing due is left behind', () => {
    fc.assert(
      fc.property(first, fc.array(spec, { minLength: 1, maxLength: 30 }), lifecycle, (firstCmd, specs, policy) => {
        const log: Recorded[] = [];
        let now = new Date(T0).getTime();
        let state = initialState('prop');
        const steps: Spec[] = [{ advanceHours: 0, desc: firstCmd }, ...specs];

        for (const { advanceHours, desc } of steps) {
          now += advanceHours * HOUR;
          const cmd = build(desc, now);
          const ctx = { ...ctxAt(iso(now)), lifecycle: policy, birthright: engine };
          const decision = decide(state, cmd, ctx);
          // decide is pure: the same input gives the same output and leaves its input alone.
          const frozen = JSON.stringify(state);
          expect(decide(state, cmd, ctx)).toEqual(decision);
          expect(JSON.stringify(state)).toBe(frozen);

          const at = iso(now);
          // (e) nothing is ever appended to an erased identity.
          if (state.erasedAt) expect(decision.events).toEqual([]);
          state = foldChecked(state, decision.events, at);
          // (d) an erased identity holds no roles and no keys, its account is deleted, its personal values are markers.
          if (state.erasedAt) {
            expect([state.account, state.roles, state.keys]).toEqual(['deleted', [], []]);
            for (const a of PERSONAL_ATTRIBUTES) if (a in state.attributes) expect(state.attributes[a]).toBe(ERASED_VALUE);
          }
          for (const event of decision.events) log.push({ event, at });

          // (a) a terminated identity holds no roles, and its account is never active.
          if (state.employment === 'terminated') {
            expect(state.roles).toEqual([]);
            expect(state.account).not.toBe('active');
          }
          // (b) no two grants share role + source.
          const keys = grantKeys(state);
          expect(new Set(keys).size).toBe(keys.length);
          // Only accounts that can hold access hold birthright roles.
          if (state.account === 'pending' || state.account === 'deleted' || state.account === 'none') {
            expect(state.roles.filter((g) => g.source.kind === 'birthright')).toEqual([]);
          }
          // The draft the decision worked on equals the fold of what it emitted: whatever was due
          // at `now` was applied (only a mover or grant can newly make inactivity due).
          if (cmd.kind !== 'Hire' && cmd.kind !== 'ProvisionAccount' && cmd.kind !== 'ExpectRevision') {
            const next = nextDeadline(state, policy);
            if (next && new Date(next.at).getTime() <= now) {
              expect(['warn-inactive', 'disable-inactive']).toContain(next.action);
            }
          }
        }

        // (c) folding the same events twice from the initial state gives the same state, equal to
        // the state built step by step, and it survives a JSON snapshot.
        const a = foldAll('prop', log);
        const b = foldAll('prop', log);
        expect(a).toEqual(b);
        expect(JSON.stringify(a)).toBe(JSON.stringify(b));
        expect(a).toEqual(state);
        expect(JSON.parse(JSON.stringify(a))).toEqual(a);
      }),
      { numRuns: 1000 },
    );
  });

  it('ApplyDueEffects reaches a fixpoint: a second one at the same instant emits nothing', () => {
    fc.assert(
      fc.property(first, fc.array(spec, { maxLength: 20 }), lifecycle, fc.integer({ min: 0, max: 400 }), (firstCmd, specs, policy, laterDays) => {
        let now = new Date(T0).getTime();
        let state = initialState('fix');
        for (const { advanceHours, desc } of [{ advanceHours: 0, desc: firstCmd }, ...specs]) {
          now += advanceHours * HOUR;
          const d = decide(state, build(desc, now), { ...ctxAt(iso(now)), lifecycle: policy });
          state = d.events.reduce((s, e) => evolve(s, e, iso(now)), state);
        }
        now += laterDays * DAY;
        const ctx = { ...ctxAt(iso(now)), lifecycle: policy };
        const once = decide(state, { kind: 'ApplyDueEffects' }, ctx);
        const after = once.events.reduce((s, e) => evolve(s, e, iso(now)), state);
        expect(decide(after, { kind: 'ApplyDueEffects' }, ctx).events).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
