import type { AttributeChanges, Attributes } from './attributes';
import type { ExternalKey } from './keys';

/**
 * Identity events: past-tense facts. A published type is never renamed or deleted; a change of
 * shape bumps its version and adds an upcaster (upcasting.ts).
 */
export type RoleSource =
  | { kind: 'birthright'; ruleId: string }
  | { kind: 'manual'; by?: string }
  | { kind: 'scim-group'; groupId: string };

export type ProvisioningSource = 'hr' | 'sso' | 'scim' | 'admin';
export type DisableReason = 'terminated' | 'inactive' | 'admin' | 'scim' | 'reconciliation';
export type EnableReason = 'rehire' | 'admin' | 'scim' | 'login-reactivation';
export type DeleteReason = 'retention' | 'scim' | 'admin' | 'erasure';
export type RevokeReason = 'recomputed' | 'terminated' | 'manual' | 'scim-group' | 'account-deleted' | 'policy-reconciled';

export interface EventShapes {
  IdentityHired: { employeeId: string; effectiveAt: string; attributes: Attributes; hrEventId?: string };
  AttributesChanged: { changes: AttributeChanges; effectiveAt: string; source: ProvisioningSource };
  IdentityTerminated: { effectiveAt: string; reason: string; hrEventId?: string };
  IdentityRehired: { employeeId: string; effectiveAt: string; hrEventId?: string };
  LoginRecorded: { at: string; issuer: string; subject: string; protocol: 'oidc' | 'saml'; credentialId?: string };
  LoginRefused: { at: string; issuer: string; subject: string; protocol: 'oidc' | 'saml'; reason: string };
  AccountProvisioned: { source: ProvisioningSource; effectiveAt: string; attributes?: Attributes };
  AccountEnabled: { reason: EnableReason; source: ProvisioningSource | 'saga'; note?: string };
  AccountDisabled: { reason: DisableReason; source: ProvisioningSource | 'saga'; effectiveAt: string; note?: string };
  AccountDeleted: { reason: DeleteReason; source: ProvisioningSource | 'saga' };
  RoleGranted: { role: string; source: RoleSource };
  RoleRevoked: { role: string; source: RoleSource; reason: RevokeReason };
  ExternalKeyLinked: { key: ExternalKey };
  ExternalKeyUnlinked: { key: ExternalKey };
  InactivityWarningIssued: { lastActivityAt: string; disableAt: string };
  /**
   * The SCIM representation a provisioning client last wrote (RFC 7643 User): keeps what has no
   * engine attribute (name.formatted, extra emails, roles, certificates, ...) so it round-trips.
   * Never holds a password, id or meta.
   */
  ScimResourceReplaced: { resource: Record<string, unknown> };
  /** A SCIM DELETE: the resource is gone for SCIM (404) whatever happened to the account. */
  ScimResourceDeleted: { mode: 'disable' | 'delete' };
  /**
   * The identity's personal data was erased (right to be forgotten): its data key is destroyed, so
   * every personal value in its history reads as ERASED_VALUE. Carries no personal data itself.
   */
  IdentityErased: { reason: string; requestedBy: string };
}

export type IdentityEventType = keyof EventShapes;

/** Current schema version of each type; what new events are written with. */
export const EVENT_VERSIONS: Record<IdentityEventType, number> = {
  IdentityHired: 1,
  AttributesChanged: 1,
  IdentityTerminated: 1,
  IdentityRehired: 1,
  LoginRecorded: 1,
  LoginRefused: 1,
  AccountProvisioned: 1,
  AccountEnabled: 1,
  AccountDisabled: 1,
  AccountDeleted: 1,
  RoleGranted: 1,
  RoleRevoked: 1,
  ExternalKeyLinked: 1,
  ExternalKeyUnlinked: 1,
  InactivityWarningIssued: 1,
  ScimResourceReplaced: 1,
  ScimResourceDeleted: 1,
  IdentityErased: 1,
};

export type IdentityEvent = { [T in IdentityEventType]: { type: T; version: number; data: EventShapes[T] } }[IdentityEventType];

export function event<T extends IdentityEventType>(type: T, data: EventShapes[T]): { type: T; version: number; data: EventShapes[T] } {
  return { type, version: EVENT_VERSIONS[type], data };
}

export const isIdentityEventType = (t: string): t is IdentityEventType => t in EVENT_VERSIONS;

export function roleSourceKey(s: RoleSource): string {
  switch (s.kind) {
    case 'birthright':
      return 'birthright';
    case 'manual':
      return 'manual';
    case 'scim-group':
      return `scim-group:${s.groupId}`;
  }
}
