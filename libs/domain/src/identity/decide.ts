import { DAY_MS, LifecyclePolicy } from '../policy/lifecycle';
import { BirthrightEngine } from '../policy/birthright';
import { AttributeName, Attributes, diffAttributes } from './attributes';
import {
  DeleteReason,
  DisableReason,
  EnableReason,
  event,
  IdentityEvent,
  ProvisioningSource,
  RoleSource,
  roleSourceKey,
} from './events';
import { canonicalJson } from '../canonical-json';
import { ExternalKey, hrKey, idpKey, keyString, parseKeyString } from './keys';
import { evolve, exists, IdentityState } from './state';

export type IdentityCommand =
  | { kind: 'Hire'; employeeId: string; effectiveAt: string; attributes: Attributes; hrEventId?: string }
  | { kind: 'ChangeAttributes'; attributes: Partial<Record<AttributeName, string | null>>; effectiveAt?: string; source: ProvisioningSource }
  | { kind: 'Terminate'; effectiveAt: string; reason: string; hrEventId?: string }
  | { kind: 'Rehire'; employeeId: string; effectiveAt: string; attributes?: Attributes; hrEventId?: string }
  | {
      kind: 'RecordLogin';
      issuer: string;
      subject: string;
      protocol: 'oidc' | 'saml';
      credentialId?: string;
      attributes?: Partial<Record<AttributeName, string>>;
      /**
       * The caller chose this identity by the login's IdP key (issuer + subject): refuse, recording
       * nothing, when the identity no longer holds that key (another process unlinked it since).
       */
      asKeyHolder?: boolean;
    }
  | {
      kind: 'ProvisionAccount';
      source: Exclude<ProvisioningSource, 'hr'>;
      attributes: Attributes;
      keys: ExternalKey[];
      /** Granted as a manual grant (recomputation never removes it), e.g. an IdP's default role. */
      initialRoles?: { role: string; by: string }[];
    }
  | { kind: 'LinkKey'; key: ExternalKey }
  | { kind: 'UnlinkKey'; key: ExternalKey }
  | { kind: 'DisableAccount'; reason: DisableReason; source: ProvisioningSource | 'saga'; note?: string }
  | { kind: 'EnableAccount'; reason: EnableReason; source: ProvisioningSource; note?: string }
  | { kind: 'DeleteAccount'; reason: DeleteReason; source: ProvisioningSource | 'saga' }
  | { kind: 'GrantRole'; role: string; source: RoleSource }
  | { kind: 'RevokeRole'; role: string; source: RoleSource }
  | { kind: 'ApplyDueEffects' }
  | { kind: 'RecomputeBirthright' }
  /** Refuses (code 'stale') unless the identity is at this revision: SCIM If-Match and read-modify-write. */
  | { kind: 'ExpectRevision'; revision: number }
  /** Records the SCIM representation a provisioning client wrote (see ScimResourceReplaced). */
  | { kind: 'ReplaceScimResource'; resource: Record<string, unknown> }
  | { kind: 'DeleteScimResource'; mode: 'disable' | 'delete' }
  /**
   * Right to be forgotten: only for an account that is disabled or deleted with no activation
   * pending. Revokes what is left, releases every external key, records IdentityErased and deletes
   * the account; the caller then destroys the identity's data key. Repeating it changes nothing.
   */
  | { kind: 'EraseIdentity'; reason: string; requestedBy: string };

export type RejectionCode =
  | 'not_found'
  | 'already_exists'
  | 'terminated'
  | 'not_terminated'
  | 'account_disabled'
  | 'account_deleted'
  | 'not_yet_active'
  | 'invalid'
  | 'stale'
  /** The identity was erased: it accepts no command any more. */
  | 'erased'
  /** Erasure asked for an account that is active or about to be: disable or terminate it first. */
  | 'account_active'
  /** A login routed by its IdP key reached an identity that no longer holds the key. */
  | 'key_not_held';

export interface Rejection {
  code: RejectionCode;
  message: string;
}

/**
 * The outcome of a command: events to append and, for a refusal, why. A refusal may still carry
 * events (a refused login is recorded for the audit trail).
 */
export interface Decision {
  events: IdentityEvent[];
  rejection?: Rejection;
}

export interface DecisionContext {
  now: Date;
  birthright: BirthrightEngine;
  lifecycle: LifecyclePolicy;
}

const reject = (code: RejectionCode, message: string, events: IdentityEvent[] = []): Decision => ({ events, rejection: { code, message } });

/** A working copy that folds each emitted event, so later steps see the effect of earlier ones. */
class Draft {
  readonly events: IdentityEvent[] = [];
  constructor(
    public state: IdentityState,
    private readonly at: string,
  ) {}
  emit(e: IdentityEvent): void {
    this.events.push(e);
    this.state = evolve(this.state, e, this.at);
  }
}

const iso = (d: Date) => d.toISOString();
const t = (s: string) => new Date(s).getTime();

/**
 * True when this login adds nothing the last recorded one did not say: same IdP subject, within the
 * policy's interval, no inactivity warning to clear. Inactivity still counts from a login at most
 * one interval old; refusals and attribute changes are always recorded.
 */
function loginRecordedRecently(s: IdentityState, cmd: { issuer: string; subject: string }, ctx: DecisionContext): boolean {
  const interval = ctx.lifecycle.loginRecordIntervalSeconds ?? 0;
  if (interval <= 0 || !s.lastLoginAt || s.inactivityWarnedAt) return false;
  if (s.lastLoginKey !== keyString(idpKey(cmd.issuer, cmd.subject))) return false;
  const since = ctx.now.getTime() - t(s.lastLoginAt);
  return since >= 0 && since < interval * 1000;
}

/** Roles an account should hold by birthright now, or none for accounts that hold no access. */
function desiredBirthright(s: IdentityState, engine: BirthrightEngine): Map<string, string> {
  // A disabled account waiting for its rehire date (employment 'pending') gets its roles at that date.
  const eligible = s.account === 'active' || (s.account === 'disabled' && s.employment !== 'terminated' && s.employment !== 'pending');
  return eligible ? engine.evaluate(s.attributes) : new Map();
}

/** Grants and revocations that bring birthright roles in line; other sources are never touched. */
function reconcileBirthright(d: Draft, engine: BirthrightEngine, revokeReason: 'recomputed' | 'policy-reconciled' = 'recomputed'): void {
  const desired = desiredBirthright(d.state, engine);
  const current = new Map(d.state.roles.filter((g) => g.source.kind === 'birthright').map((g) => [g.role, g.source]));
  // A role now granted by another rule is re-granted under that rule, in the same append (same
  // instant, so membership never lapses): auditors see the rule that actually justifies it.
  const stale = (role: string, source: RoleSource) => source.kind === 'birthright' && desired.has(role) && desired.get(role) !== source.ruleId;
  for (const [role, source] of current) {
    if (!desired.has(role) || stale(role, source)) d.emit(event('RoleRevoked', { role, source, reason: revokeReason }));
  }
  for (const [role, ruleId] of desired) {
    const held = current.get(role);
    if (!held || stale(role, held)) d.emit(event('RoleGranted', { role, source: { kind: 'birthright', ruleId } }));
  }
}

function revokeAll(d: Draft, reason: 'terminated' | 'account-deleted'): void {
  for (const g of d.state.roles) d.emit(event('RoleRevoked', { role: g.role, source: g.source, reason }));
}

function activate(d: Draft, ctx: DecisionContext, effectiveAt: string, source: ProvisioningSource): void {
  const s = d.state;
  if (s.account === 'none' || s.account === 'pending' || s.account === 'deleted') {
    d.emit(event('AccountProvisioned', { source, effectiveAt }));
  } else if (s.account === 'disabled') {
    d.emit(event('AccountEnabled', { reason: 'rehire', source }));
  } else if (s.pendingActivation) {
    // Already active (a rehire that cancelled a termination not yet in force): nothing to switch on.
    d.emit(event('AccountEnabled', { reason: 'rehire', source }));
  }
  reconcileBirthright(d, ctx.birthright);
}

function applyTermination(d: Draft, effectiveAt: string): void {
  if (d.state.account !== 'deleted') {
    d.emit(event('AccountDisabled', { reason: 'terminated', source: 'saga', effectiveAt }));
  } else {
    d.emit(event('AccountDisabled', { reason: 'terminated', source: 'saga', effectiveAt, note: 'account already deleted' }));
  }
  revokeAll(d, 'terminated');
}

/** Days of inactivity allowed for this identity: the strictest applicable override wins; 0 = off. */
export function inactivityDaysFor(s: IdentityState, p: LifecyclePolicy): number {
  const type = s.attributes.employmentType;
  let days = (type ? p.inactivityDaysByEmploymentType?.[type] : undefined) ?? p.inactivityDays;
  if (p.inactivityDaysByRole) {
    for (const g of s.roles) {
      const o = p.inactivityDaysByRole[g.role];
      if (o !== undefined && o > 0 && (days === 0 || o < days)) days = o;
    }
  }
  return days;
}

export type DeadlineAction = 'activate' | 'terminate' | 'delete' | 'warn-inactive' | 'disable-inactive';

/** The next instant at which something happens to this identity without anyone asking. */
export function nextDeadline(s: IdentityState, p: LifecyclePolicy): { at: string; action: DeadlineAction } | null {
  const candidates: { at: number; action: DeadlineAction }[] = [];
  if (!exists(s) || s.erasedAt) return null;
  if (s.pendingActivation && !(s.termination && !s.termination.applied && t(s.termination.effectiveAt) <= t(s.pendingActivation.effectiveAt))) {
    candidates.push({ at: t(s.pendingActivation.effectiveAt), action: 'activate' });
  }
  if (s.termination && !s.termination.applied) candidates.push({ at: t(s.termination.effectiveAt), action: 'terminate' });
  if (s.termination?.applied && s.account !== 'deleted' && !s.pendingActivation) {
    candidates.push({ at: t(s.termination.effectiveAt) + p.retentionDays * DAY_MS, action: 'delete' });
  }
  if (s.account === 'active' && s.employment !== 'terminated' && !s.pendingActivation) {
    const days = inactivityDaysFor(s, p);
    const from = s.lastActivityAt ?? s.provisionedAt;
    if (days > 0 && from) {
      const deadline = t(from) + days * DAY_MS;
      const warn = p.inactivityWarningDays ?? 0;
      if (warn > 0 && !s.inactivityWarnedAt && warn < days) candidates.push({ at: deadline - warn * DAY_MS, action: 'warn-inactive' });
      candidates.push({ at: deadline, action: 'disable-inactive' });
    }
  }
  if (candidates.length === 0) return null;
  candidates.sort((a, b) => a.at - b.at);
  return { at: new Date(candidates[0].at).toISOString(), action: candidates[0].action };
}

/** Applies every effect whose time has come (future-dated hires and terminations, retention, inactivity). */
function applyDueEffects(d: Draft, ctx: DecisionContext): void {
  const now = ctx.now.getTime();
  for (let guard = 0; guard < 8; guard++) {
    const next = nextDeadline(d.state, ctx.lifecycle);
    if (!next || t(next.at) > now) return;
    const s = d.state;
    switch (next.action) {
      case 'activate':
        activate(d, ctx, s.pendingActivation!.effectiveAt, 'hr');
        break;
      case 'terminate':
        applyTermination(d, s.termination!.effectiveAt);
        break;
      case 'delete':
        revokeAll(d, 'account-deleted');
        d.emit(event('AccountDeleted', { reason: 'retention', source: 'saga' }));
        break;
      case 'warn-inactive': {
        const from = s.lastActivityAt ?? s.provisionedAt!;
        const disableAt = new Date(t(from) + inactivityDaysFor(s, ctx.lifecycle) * DAY_MS).toISOString();
        d.emit(event('InactivityWarningIssued', { lastActivityAt: from, disableAt }));
        break;
      }
      case 'disable-inactive':
        d.emit(event('AccountDisabled', { reason: 'inactive', source: 'saga', effectiveAt: next.at }));
        break;
    }
  }
}

/** Decides one command against the current state: pure, no I/O, time from ctx. */
export function decide(state: IdentityState, cmd: IdentityCommand, ctx: DecisionContext): Decision {
  const now = iso(ctx.now);
  const d = new Draft(state, now);

  if (cmd.kind === 'ExpectRevision') {
    // Checked before any due effect, so a stale request appends nothing at all.
    if (state.revision !== cmd.revision) return reject('stale', `identity ${state.identityId} is at revision ${state.revision}, not ${cmd.revision}`);
    return { events: [] };
  }

  if (state.erasedAt) {
    // Nothing is appended to an erased identity; asking again for its erasure is answered as done.
    if (cmd.kind === 'EraseIdentity') return { events: [] };
    return reject('erased', `identity ${state.identityId} was erased on ${state.erasedAt}; it accepts no further changes`);
  }

  if (cmd.kind === 'Hire') {
    if (exists(state)) {
      if (state.employment === 'terminated') return decide(state, { ...cmd, kind: 'Rehire' }, ctx);
      if (state.employeeId === cmd.employeeId && state.hireEffectiveAt === cmd.effectiveAt) return { events: [] };
      return reject('already_exists', `identity ${state.identityId} already exists for employee ${state.employeeId}`);
    }
    d.emit(event('IdentityHired', { employeeId: cmd.employeeId, effectiveAt: cmd.effectiveAt, attributes: cmd.attributes, hrEventId: cmd.hrEventId }));
    d.emit(event('ExternalKeyLinked', { key: hrKey(cmd.employeeId) }));
    applyDueEffects(d, ctx);
    return { events: d.events };
  }

  if (cmd.kind === 'ProvisionAccount') {
    if (exists(state)) return reject('already_exists', `identity ${state.identityId} already exists`);
    for (const key of cmd.keys) d.emit(event('ExternalKeyLinked', { key }));
    d.emit(event('AccountProvisioned', { source: cmd.source, effectiveAt: now, attributes: cmd.attributes }));
    for (const r of cmd.initialRoles ?? []) d.emit(event('RoleGranted', { role: r.role, source: { kind: 'manual', by: r.by } }));
    reconcileBirthright(d, ctx.birthright);
    return { events: d.events };
  }

  if (!exists(state)) return reject('not_found', `identity ${state.identityId} does not exist`);
  applyDueEffects(d, ctx);
  const s = () => d.state;

  switch (cmd.kind) {
    case 'ChangeAttributes': {
      const changes = diffAttributes(s().attributes, cmd.attributes);
      if (Object.keys(changes).length === 0) break;
      d.emit(event('AttributesChanged', { changes, effectiveAt: cmd.effectiveAt ?? now, source: cmd.source }));
      reconcileBirthright(d, ctx.birthright);
      break;
    }
    case 'Terminate': {
      const term = s().termination;
      if (s().employment === 'terminated') {
        if (term?.effectiveAt === cmd.effectiveAt || !term) break;
        return reject('terminated', `identity ${state.identityId} was already terminated on ${term.effectiveAt}`, d.events);
      }
      if (term && term.effectiveAt === cmd.effectiveAt) break;
      d.emit(event('IdentityTerminated', { effectiveAt: cmd.effectiveAt, reason: cmd.reason, hrEventId: cmd.hrEventId }));
      applyDueEffects(d, ctx);
      break;
    }
    case 'Rehire': {
      const st = s();
      const terminationPending = !!st.termination && !st.termination.applied;
      if (st.employment !== 'terminated' && !terminationPending) {
        if (st.pendingActivation?.effectiveAt === cmd.effectiveAt) break;
        return reject('not_terminated', `identity ${state.identityId} is not terminated`, d.events);
      }
      if (st.employeeId && st.employeeId !== cmd.employeeId && !st.keys.includes(keyString(hrKey(cmd.employeeId)))) {
        d.emit(event('ExternalKeyLinked', { key: hrKey(cmd.employeeId) }));
      }
      d.emit(event('IdentityRehired', { employeeId: cmd.employeeId, effectiveAt: cmd.effectiveAt, hrEventId: cmd.hrEventId }));
      if (cmd.attributes) {
        const changes = diffAttributes(s().attributes, cmd.attributes);
        if (Object.keys(changes).length) d.emit(event('AttributesChanged', { changes, effectiveAt: cmd.effectiveAt, source: 'hr' }));
      }
      if (terminationPending && s().account === 'active') {
        // The termination never took effect: the rehire only cancels it. pendingActivation stays as
        // folded (activate() emits AccountEnabled at its date), so the draft equals the stored state.
        reconcileBirthright(d, ctx.birthright);
      }
      applyDueEffects(d, ctx);
      break;
    }
    case 'RecordLogin': {
      const st = s();
      if (cmd.asKeyHolder && !st.keys.includes(keyString(idpKey(cmd.issuer, cmd.subject)))) {
        return reject('key_not_held', `identity ${st.identityId} does not hold the key of ${cmd.issuer} subject ${cmd.subject}`, d.events);
      }
      const refuse = (code: RejectionCode, reason: string) => {
        d.emit(event('LoginRefused', { at: now, issuer: cmd.issuer, subject: cmd.subject, protocol: cmd.protocol, reason }));
        return reject(code, `login refused: ${reason}`, d.events);
      };
      if (st.account === 'deleted') return refuse('account_deleted', 'account deleted');
      if (st.account === 'pending' || st.account === 'none') return refuse('not_yet_active', 'account not active yet');
      if (st.account === 'disabled') {
        return refuse(st.employment === 'terminated' ? 'terminated' : 'account_disabled', `account disabled (${st.disabledReason})`);
      }
      if (!loginRecordedRecently(st, cmd, ctx)) {
        d.emit(event('LoginRecorded', { at: now, issuer: cmd.issuer, subject: cmd.subject, protocol: cmd.protocol, credentialId: cmd.credentialId }));
      }
      if (cmd.attributes) {
        const changes = diffAttributes(s().attributes, cmd.attributes);
        if (Object.keys(changes).length) {
          d.emit(event('AttributesChanged', { changes, effectiveAt: now, source: 'sso' }));
          reconcileBirthright(d, ctx.birthright);
        }
      }
      break;
    }
    case 'LinkKey': {
      if (!s().keys.includes(keyString(cmd.key))) d.emit(event('ExternalKeyLinked', { key: cmd.key }));
      break;
    }
    case 'UnlinkKey': {
      if (s().keys.includes(keyString(cmd.key))) d.emit(event('ExternalKeyUnlinked', { key: cmd.key }));
      break;
    }
    case 'DisableAccount': {
      const st = s();
      if (st.account === 'deleted') return reject('account_deleted', 'account is deleted', d.events);
      if (st.account === 'disabled' || st.account === 'pending') break;
      d.emit(event('AccountDisabled', { reason: cmd.reason, source: cmd.source, effectiveAt: now, note: cmd.note }));
      break;
    }
    case 'EnableAccount': {
      const st = s();
      if (st.account === 'deleted') return reject('account_deleted', 'account is deleted; a rehire or new provisioning is needed', d.events);
      if (st.employment === 'terminated') return reject('terminated', 'identity is terminated; only a rehire re-enables it', d.events);
      if (st.termination && !st.termination.applied) {
        // Allowed: the termination still takes effect at its date.
      }
      if (st.account === 'pending') return reject('not_yet_active', 'account not active yet', d.events);
      if (st.account === 'active') break;
      d.emit(event('AccountEnabled', { reason: cmd.reason, source: cmd.source, note: cmd.note }));
      reconcileBirthright(d, ctx.birthright);
      break;
    }
    case 'DeleteAccount': {
      if (s().account === 'deleted') break;
      revokeAll(d, 'account-deleted');
      d.emit(event('AccountDeleted', { reason: cmd.reason, source: cmd.source }));
      break;
    }
    case 'GrantRole': {
      const st = s();
      if (st.account === 'deleted') return reject('account_deleted', 'account is deleted', d.events);
      if (st.employment === 'terminated') return reject('terminated', 'identity is terminated', d.events);
      const k = roleSourceKey(cmd.source);
      if (!st.roles.some((g) => g.role === cmd.role && roleSourceKey(g.source) === k)) d.emit(event('RoleGranted', { role: cmd.role, source: cmd.source }));
      break;
    }
    case 'RevokeRole': {
      const k = roleSourceKey(cmd.source);
      const held = s().roles.find((g) => g.role === cmd.role && roleSourceKey(g.source) === k);
      if (held) {
        d.emit(event('RoleRevoked', { role: cmd.role, source: held.source, reason: cmd.source.kind === 'scim-group' ? 'scim-group' : 'manual' }));
      }
      break;
    }
    case 'ReplaceScimResource': {
      const st = s();
      if (st.account === 'deleted' || st.scim?.deleted) return reject('account_deleted', 'the SCIM resource is deleted', d.events);
      if (!st.scim || canonicalJson(st.scim.resource) !== canonicalJson(cmd.resource)) d.emit(event('ScimResourceReplaced', { resource: cmd.resource }));
      break;
    }
    case 'DeleteScimResource':
      if (!s().scim?.deleted) d.emit(event('ScimResourceDeleted', { mode: cmd.mode }));
      break;
    case 'EraseIdentity': {
      const st = s();
      if ((st.account !== 'disabled' && st.account !== 'deleted') || st.pendingActivation) {
        const why = st.pendingActivation ? `has a ${st.pendingActivation.kind} pending for ${st.pendingActivation.effectiveAt}` : `has an ${st.account} account`;
        return reject('account_active', `identity ${state.identityId} ${why}: disable or terminate it before erasing its personal data`, d.events);
      }
      if (st.roles.length) revokeAll(d, 'account-deleted');
      // Released, so the claims table keeps no key of an erased identity (a SCIM userName is often an email).
      for (const k of d.state.keys) {
        const key = parseKeyString(k);
        if (key) d.emit(event('ExternalKeyUnlinked', { key }));
      }
      d.emit(event('IdentityErased', { reason: cmd.reason, requestedBy: cmd.requestedBy }));
      // After IdentityErased, so no state in between is "deleted but not erased" (whose read model
      // drops personal attributes instead of marking them erased).
      if (st.account !== 'deleted') d.emit(event('AccountDeleted', { reason: 'erasure', source: 'admin' }));
      break;
    }
    case 'ApplyDueEffects':
      break;
    case 'RecomputeBirthright':
      reconcileBirthright(d, ctx.birthright, 'policy-reconciled');
      break;
  }
  return { events: d.events };
}

/** Decides several commands in a row on one identity (e.g. link a key, then record the login). */
export function decideAll(state: IdentityState, cmds: IdentityCommand[], ctx: DecisionContext): Decision {
  let s = state;
  const events: IdentityEvent[] = [];
  const at = iso(ctx.now);
  for (const c of cmds) {
    const r = decide(s, c, ctx);
    events.push(...r.events);
    if (r.rejection) return { events, rejection: r.rejection };
    for (const e of r.events) s = evolve(s, e, at);
  }
  return { events };
}

/** The key claims and releases an append must make for these events. */
export function keyChanges(events: IdentityEvent[]): { claims: string[]; releases: string[] } {
  const claims: string[] = [];
  const releases: string[] = [];
  for (const e of events) {
    if (e.type === 'ExternalKeyLinked') claims.push(keyString(e.data.key));
    if (e.type === 'ExternalKeyUnlinked') releases.push(keyString(e.data.key));
  }
  return { claims, releases };
}
