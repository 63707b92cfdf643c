import { AttributeName, DAY_MS, IdentityState } from '@idlc/domain';
import type { HrRecord, HrSnapshot, HrStatus } from './snapshot';

/** Bump when a field of the report changes meaning or goes away; adding a field does not. */
export const REPORT_VERSION = 1;

export type LinkedBy = 'hr' | 'sso' | 'scim';

export interface OrphanItem {
  identityId: string;
  employeeId: string | null;
  /** not-in-snapshot: an HR identity HR no longer lists; no-hr-link: never came from HR (SSO JIT, SCIM). */
  reason: 'not-in-snapshot' | 'no-hr-link';
  linkedBy: LinkedBy[];
  email: string | null;
  displayName: string | null;
  provisionedAt: string | null;
  lastLoginAt: string | null;
}

export interface GhostItem {
  identityId: string;
  employeeId: string;
  email: string | null;
  displayName: string | null;
  provisionedAt: string;
  daysSinceProvisioned: number;
}

export interface DriftItem {
  identityId: string;
  employeeId: string;
  account: string;
  /** Only attributes the snapshot states; null on either side means no value. */
  differences: { attribute: AttributeName; engine: string | null; snapshot: string | null }[];
}

export interface MissingItem {
  employeeId: string;
  where: string;
  status: HrStatus | null;
  /** no-identity: the engine never heard of this person; account-deleted: the account was deleted. */
  reason: 'no-identity' | 'account-deleted';
  identityId: string | null;
}

export interface TerminatedItem {
  identityId: string;
  employeeId: string;
  email: string | null;
  displayName: string | null;
  employment: string;
  lastLoginAt: string | null;
}

export interface ReconciliationReport {
  reportVersion: number;
  generatedAt: string;
  snapshot: {
    file: string | null;
    format: string;
    sha256: string;
    records: number;
    attributes: AttributeName[];
    hasStatus: boolean;
    ignoredColumns: string[];
  };
  options: { ghostDays: number };
  identitiesScanned: number;
  /** Scanned accounts that are enabled (what the --apply safety limit is a share of). */
  accountsEnabled: number;
  counts: { orphans: number; ghosts: number; drift: number; driftedAttributes: number; missing: number; terminatedButEnabled: number };
  orphans: OrphanItem[];
  ghosts: GhostItem[];
  drift: DriftItem[];
  missing: MissingItem[];
  terminatedButEnabled: TerminatedItem[];
}

export interface CompareOptions {
  now: Date;
  /** An identity provisioned more than this many days before `now` that never logged in is a ghost. */
  ghostDays: number;
  file?: string;
}

const displayNameOf = (s: IdentityState) =>
  s.attributes.displayName ?? ([s.attributes.givenName, s.attributes.familyName].filter(Boolean).join(' ') || null);

function linkedBy(s: IdentityState): LinkedBy[] {
  const out = new Set<LinkedBy>();
  for (const k of s.keys) {
    if (k.startsWith('hr:')) out.add('hr');
    else if (k.startsWith('idp:')) out.add('sso');
    else if (k.startsWith('scim-')) out.add('scim');
  }
  return (['hr', 'sso', 'scim'] as const).filter((x) => out.has(x));
}

/** Every employee id an identity answers to: its current one and any earlier HR key (a rehire under a new id). */
function employeeIds(s: IdentityState): string[] {
  const ids = s.employeeId ? [s.employeeId] : [];
  for (const k of s.keys) if (k.startsWith('hr:') && !ids.includes(k.slice(3))) ids.push(k.slice(3));
  return ids;
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/**
 * Compares identities, fed one at a time in any order, with an HR snapshot. Pure: no I/O, time
 * from the options; memory holds the snapshot and the findings, never all identities.
 */
export class Reconciler {
  private readonly matched = new Set<string>();
  private readonly deleted = new Map<string, string>();
  private scanned = 0;
  private enabled = 0;
  private readonly orphans: OrphanItem[] = [];
  private readonly ghosts: GhostItem[] = [];
  private readonly drift: DriftItem[] = [];
  private readonly terminated: TerminatedItem[] = [];

  constructor(
    private readonly snapshot: HrSnapshot,
    private readonly options: CompareOptions,
  ) {}

  observe(s: IdentityState): void {
    if (s.revision < 0) return;
    this.scanned++;
    let record: HrRecord | undefined;
    for (const id of employeeIds(s)) {
      record = this.snapshot.records.get(id);
      if (record) break;
    }
    if (s.account === 'deleted') {
      // A deleted account holds no access and no personal data to compare; it only explains a
      // snapshot record that has no live account.
      if (record) this.deleted.set(record.employeeId, s.identityId);
      return;
    }
    const enabled = s.account === 'active';
    if (enabled) this.enabled++;
    if (!record) {
      if (enabled) {
        this.orphans.push({
          identityId: s.identityId,
          employeeId: s.employeeId ?? null,
          reason: s.employeeId ? 'not-in-snapshot' : 'no-hr-link',
          linkedBy: linkedBy(s),
          email: s.attributes.email ?? null,
          displayName: displayNameOf(s),
          provisionedAt: s.provisionedAt ?? null,
          lastLoginAt: s.lastLoginAt ?? null,
        });
      }
      return;
    }
    this.matched.add(record.employeeId);
    const employeeId = record.employeeId;

    const provisioned = s.provisionedAt ? new Date(s.provisionedAt).getTime() : undefined;
    if (enabled && !s.lastLoginAt && provisioned !== undefined && this.options.now.getTime() - provisioned > this.options.ghostDays * DAY_MS) {
      this.ghosts.push({
        identityId: s.identityId,
        employeeId,
        email: s.attributes.email ?? null,
        displayName: displayNameOf(s),
        provisionedAt: s.provisionedAt!,
        daysSinceProvisioned: Math.floor((this.options.now.getTime() - provisioned) / DAY_MS),
      });
    }

    const differences: DriftItem['differences'] = [];
    for (const attribute of this.snapshot.attributes) {
      if (!(attribute in record.attributes)) continue;
      const snapshot = record.attributes[attribute] ?? null;
      const engine = s.attributes[attribute] ?? null;
      if (engine !== snapshot) differences.push({ attribute, engine, snapshot });
    }
    if (differences.length) this.drift.push({ identityId: s.identityId, employeeId, account: s.account, differences });

    if (record.status === 'terminated' && enabled) {
      this.terminated.push({
        identityId: s.identityId,
        employeeId,
        email: s.attributes.email ?? null,
        displayName: displayNameOf(s),
        employment: s.employment,
        lastLoginAt: s.lastLoginAt ?? null,
      });
    }
  }

  report(): ReconciliationReport {
    const missing: MissingItem[] = [];
    for (const r of this.snapshot.records.values()) {
      // Someone HR lists as terminated is expected to have no live account.
      if (this.matched.has(r.employeeId) || r.status === 'terminated') continue;
      const deletedId = this.deleted.get(r.employeeId);
      missing.push({
        employeeId: r.employeeId,
        where: r.where,
        status: r.status ?? null,
        reason: deletedId ? 'account-deleted' : 'no-identity',
        identityId: deletedId ?? null,
      });
    }
    // The order is the same whatever order the identities were read in (read models sort ids per
    // their own collation).
    const byEmployee = byKey((x: { employeeId: string | null; identityId: string }) => `${x.employeeId ?? '\uffff'}\u0000${x.identityId}`);
    const s = this.snapshot;
    return {
      reportVersion: REPORT_VERSION,
      generatedAt: this.options.now.toISOString(),
      snapshot: {
        file: this.options.file ?? null,
        format: s.format,
        sha256: s.sha256,
        records: s.records.size,
        attributes: s.attributes,
        hasStatus: s.hasStatus,
        ignoredColumns: s.ignoredColumns,
      },
      options: { ghostDays: this.options.ghostDays },
      identitiesScanned: this.scanned,
      accountsEnabled: this.enabled,
      counts: {
        orphans: this.orphans.length,
        ghosts: this.ghosts.length,
        drift: this.drift.length,
        driftedAttributes: this.drift.reduce((n, d) => n + d.differences.length, 0),
        missing: missing.length,
        terminatedButEnabled: this.terminated.length,
      },
      orphans: [...this.orphans].sort(byEmployee),
      ghosts: [...this.ghosts].sort(byEmployee),
      drift: [...this.drift].sort(byEmployee),
      missing,
      terminatedButEnabled: [...this.terminated].sort(byEmployee),
    };
  }
}

export const hasFindings = (r: ReconciliationReport): boolean =>
  r.counts.orphans + r.counts.ghosts + r.counts.drift + r.counts.missing + r.counts.terminatedButEnabled > 0;
