/**
 * How SSO logins ended, per IdP, in this process: `provisioned` (first login, account created just in
 * time), `linked` (first login matched to an HR identity), `recorded` (LoginRecorded appended),
 * `within_interval` (a repeat inside LOGIN_RECORD_INTERVAL_SECONDS: answered, nothing appended), or a
 * refusal type (`account_disabled`, `replayed`, `invalid_signature`, ...; IdP `unknown` when the
 * credential named none we trust). Exposed as idlc_sso_logins_total.
 */
export class LoginOutcomes {
  private readonly counts = new Map<string, { idp: string; outcome: string; n: number }>();

  add(idp: string, outcome: string): void {
    const k = `${idp}\u0000${outcome}`;
    const c = this.counts.get(k);
    if (c) c.n++;
    else this.counts.set(k, { idp, outcome, n: 1 });
  }

  entries(): { idp: string; outcome: string; n: number }[] {
    return [...this.counts.values()];
  }
}
