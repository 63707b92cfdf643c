import { applyChanges, Attributes } from './attributes';
import { erasedAttributes } from './personal-data';
import type { IdentityEvent, RoleSource } from './events';
import { roleSourceKey } from './events';
import { idpKey, keyString } from './keys';

export type EmploymentStatus = 'none' | 'pending' | 'active' | 'terminated';
export type AccountStatus = 'none' | 'pending' | 'active' | 'disabled' | 'deleted';

export interface RoleGrant {
  role: string;
  source: RoleSource;
  grantedAt: string;
}

/** Everything a decision needs about one identity. Plain JSON, so it can be snapshotted. */
export interface IdentityState {
  identityId: string;
  /** Revision of the last folded event; -1 for an identity with no events. */
  revision: number;
  employeeId?: string;
  employment: EmploymentStatus;
  account: AccountStatus;
  disabledReason?: string;
  attributes: Attributes;
  keys: string[];
  roles: RoleGrant[];
  hireEffectiveAt?: string;
  /** A hire or rehire waiting for its effective date. */
  pendingActivation?: { kind: 'hire' | 'rehire'; effectiveAt: string };
  termination?: { effectiveAt: string; reason: string; applied: boolean };
  provisionedAt?: string;
  lastLoginAt?: string;
  /** The IdP key (issuer + subject) of the last recorded login. */
  lastLoginKey?: string;
  /** Last login or (re)activation: what inactivity counts from. */
  lastActivityAt?: string;
  inactivityWarnedAt?: string;
  deletedAt?: string;
  createdAt?: string;
  updatedAt?: string;
  /** The SCIM resource of a SCIM-provisioned identity; emptied once deleted (no personal data kept). */
  scim?: { resource: Record<string, unknown>; deleted?: boolean };
  /** When its personal data was erased: personal attributes then read ERASED_VALUE and nothing changes it any more. */
  erasedAt?: string;
}

export const STATE_SCHEMA_VERSION = 1;

export function initialState(identityId: string): IdentityState {
  return { identityId, revision: -1, employment: 'none', account: 'none', attributes: {}, keys: [], roles: [] };
}

export const exists = (s: IdentityState): boolean => s.revision >= 0;

/**
 * The pure fold. `at` is when the event was recorded: it dates grants and activity, so a state
 * rebuilt from history is the state the engine had at the time.
 */
export function evolve(s: IdentityState, e: IdentityEvent, at: string, revision = s.revision + 1): IdentityState {
  const n: IdentityState = { ...s, revision, updatedAt: at, createdAt: s.createdAt ?? at };
  switch (e.type) {
    case 'IdentityHired':
      n.employeeId = e.data.employeeId;
      n.attributes = { ...e.data.attributes };
      n.employment = 'pending';
      n.account = s.account === 'none' ? 'pending' : s.account;
      n.hireEffectiveAt = e.data.effectiveAt;
      n.pendingActivation = { kind: 'hire', effectiveAt: e.data.effectiveAt };
      n.termination = undefined;
      break;
    case 'AttributesChanged':
      n.attributes = applyChanges(s.attributes, e.data.changes);
      break;
    case 'IdentityTerminated':
      n.termination = { effectiveAt: e.data.effectiveAt, reason: e.data.reason, applied: false };
      break;
    case 'IdentityRehired':
      n.employeeId = e.data.employeeId;
      n.termination = undefined;
      n.pendingActivation = { kind: 'rehire', effectiveAt: e.data.effectiveAt };
      if (s.employment === 'terminated') n.employment = 'pending';
      break;
    case 'LoginRecorded':
      n.lastLoginAt = e.data.at;
      n.lastLoginKey = keyString(idpKey(e.data.issuer, e.data.subject));
      n.lastActivityAt = e.data.at;
      n.inactivityWarnedAt = undefined;
      break;
    case 'LoginRefused':
      break;
    case 'AccountProvisioned':
      n.account = 'active';
      n.disabledReason = undefined;
      n.provisionedAt = at;
      n.lastActivityAt = at;
      n.deletedAt = undefined;
      n.inactivityWarnedAt = undefined;
      if (e.data.attributes) n.attributes = { ...s.attributes, ...e.data.attributes };
      if (s.employment === 'pending') n.employment = 'active';
      n.pendingActivation = undefined;
      break;
    case 'AccountEnabled':
      n.account = 'active';
      n.disabledReason = undefined;
      n.lastActivityAt = at;
      n.inactivityWarnedAt = undefined;
      if (s.employment === 'pending') n.employment = 'active';
      if (e.data.reason === 'rehire') n.pendingActivation = undefined;
      break;
    case 'AccountDisabled':
      // A termination that takes effect after an admin deletion leaves the account deleted.
      n.account = s.account === 'deleted' ? 'deleted' : 'disabled';
      n.disabledReason = e.data.reason;
      if (e.data.reason === 'terminated') {
        n.employment = 'terminated';
        if (s.termination) n.termination = { ...s.termination, applied: true };
        // A hire or rehire dated after the termination never activates.
        n.pendingActivation = undefined;
      }
      break;
    case 'AccountDeleted':
      n.account = 'deleted';
      n.deletedAt = at;
      if (s.scim) n.scim = { resource: {}, deleted: true };
      break;
    case 'RoleGranted': {
      const k = roleSourceKey(e.data.source);
      if (!s.roles.some((g) => g.role === e.data.role && roleSourceKey(g.source) === k)) {
        n.roles = [...s.roles, { role: e.data.role, source: e.data.source, grantedAt: at }];
      }
      break;
    }
    case 'RoleRevoked': {
      const k = roleSourceKey(e.data.source);
      n.roles = s.roles.filter((g) => !(g.role === e.data.role && roleSourceKey(g.source) === k));
      break;
    }
    case 'ExternalKeyLinked': {
      const k = keyString(e.data.key);
      if (!s.keys.includes(k)) n.keys = [...s.keys, k];
      break;
    }
    case 'ExternalKeyUnlinked': {
      const k = keyString(e.data.key);
      n.keys = s.keys.filter((x) => x !== k);
      break;
    }
    case 'InactivityWarningIssued':
      n.inactivityWarnedAt = at;
      break;
    case 'ScimResourceReplaced':
      n.scim = { resource: e.data.resource };
      break;
    case 'ScimResourceDeleted':
      n.scim = { resource: {}, deleted: true };
      break;
    case 'IdentityErased':
      // The same values a replay reads once the data key is gone, so a live read model that folds
      // this event equals one rebuilt from zero after the erasure.
      n.erasedAt = at;
      n.attributes = erasedAttributes(s.attributes);
      n.keys = [];
      n.pendingActivation = undefined;
      if (s.scim) n.scim = { resource: {}, deleted: true };
      break;
  }
  return n;
}

/** Folds stored events (already upcast) onto a state. */
export function foldEvents(
  s: IdentityState,
  events: Iterable<{ event: IdentityEvent; recordedAt: string; revision: number }>,
): IdentityState {
  let out = s;
  for (const x of events) out = evolve(out, x.event, x.recordedAt, x.revision);
  return out;
}

/** Distinct roles held, whatever their source. */
export function heldRoles(s: IdentityState): string[] {
  return [...new Set(s.roles.map((g) => g.role))].sort();
}
