import {
  BirthrightEngine,
  Decision,
  DecisionContext,
  decide,
  evolve,
  IdentityCommand,
  IdentityEvent,
  IdentityState,
  initialState,
  LifecyclePolicy,
} from '../src';

export const DAY = 24 * 60 * 60 * 1000;
export const T0 = '2026-01-05T09:00:00.000Z';

/** ISO instant `days` (may be fractional or negative) after T0. */
export const at = (days: number, from: string = T0): string => new Date(new Date(from).getTime() + days * DAY).toISOString();

export const POLICY_DOC = {
  version: 1,
  defaultRoles: ['employee'],
  rules: [
    { id: 'eng', when: { attribute: 'department', equals: 'Engineering' }, roles: ['git', 'ci'] },
    { id: 'sales', when: { attribute: 'department', in: ['Sales', 'Marketing'], ignoreCase: true }, roles: ['crm'] },
    { id: 'heads', when: { attribute: 'title', prefix: 'Head of' }, roles: ['approver'] },
    { id: 'contractors', when: { attribute: 'employmentType', equals: 'contractor' }, roles: ['contractor-portal'] },
  ],
};

export const engine = BirthrightEngine.from(POLICY_DOC);

export const LIFECYCLE: LifecyclePolicy = {
  inactivityDays: 90,
  inactivityDaysByEmploymentType: { contractor: 30 },
  inactivityDaysByRole: { admin: 14 },
  inactivityWarningDays: 7,
  retentionDays: 30,
};

export function ctxAt(now: string, over: Partial<DecisionContext> = {}): DecisionContext {
  return { now: new Date(now), birthright: engine, lifecycle: LIFECYCLE, ...over };
}

export function fold(s: IdentityState, events: IdentityEvent[], recordedAt: string): IdentityState {
  return events.reduce((acc, e) => evolve(acc, e, recordedAt), s);
}

/** Decides at `now` and folds the events the decision returned (what the engine appends). */
export function step(s: IdentityState, cmd: IdentityCommand, now: string, over: Partial<DecisionContext> = {}): { d: Decision; s: IdentityState } {
  const d = decide(s, cmd, ctxAt(now, over));
  return { d, s: fold(s, d.events, now) };
}

export const types = (d: Decision) => d.events.map((e) => e.type);

/** Compact view of role events: `+role@source` / `-role@source(reason)`. */
export function roleOps(d: Decision): string[] {
  const src = (s: { kind: string; ruleId?: string; groupId?: string }) =>
    s.kind === 'birthright' ? `birthright:${s.ruleId}` : s.kind === 'scim-group' ? `scim-group:${s.groupId}` : s.kind;
  return d.events.flatMap((e) => {
    if (e.type === 'RoleGranted') return [`+${e.data.role}@${src(e.data.source)}`];
    if (e.type === 'RoleRevoked') return [`-${e.data.role}@${src(e.data.source)}(${e.data.reason})`];
    return [];
  });
}

export const roles = (s: IdentityState) => s.roles.map((g) => `${g.role}@${g.source.kind}`).sort();

export const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering', employmentType: 'employee' };

/** An engineer hired (effective) at T0, decided at T0: active, holding employee, git, ci. */
export function hiredEngineer(id = 'id-1'): IdentityState {
  return step(initialState(id), { kind: 'Hire', employeeId: 'E1', effectiveAt: T0, attributes: ENGINEER }, T0).s;
}
