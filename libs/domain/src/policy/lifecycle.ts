/** When accounts are disabled and deleted without anyone asking. */
export interface LifecyclePolicy {
  /** Days without a login before an active account is disabled; 0 turns inactivity off. */
  inactivityDays: number;
  /** Overrides by employment type (e.g. contractor: 30). */
  inactivityDaysByEmploymentType?: Record<string, number>;
  /** Overrides by role held; the strictest (smallest) applicable value wins. */
  inactivityDaysByRole?: Record<string, number>;
  /** Days before the inactivity deadline to record a warning; 0 for none. */
  inactivityWarningDays?: number;
  /** Days after a termination took effect before the account is deleted. */
  retentionDays: number;
  /**
   * A login of an active account through the same IdP subject within this many seconds of the
   * last recorded one is answered without a new LoginRecorded (0 or absent: record every login).
   * Inactivity counts days, so the last recorded login may lag the true one by at most this much
   * (Active Directory's lastLogonTimestamp makes the same trade at 14 days).
   */
  loginRecordIntervalSeconds?: number;
}

export const DEFAULT_LIFECYCLE: LifecyclePolicy = {
  inactivityDays: 90,
  inactivityDaysByEmploymentType: { contractor: 30 },
  inactivityWarningDays: 7,
  retentionDays: 30,
};

export const DAY_MS = 24 * 60 * 60 * 1000;
