import type { Clock } from '@idlc/domain';
import type { SqlDatabase } from '@idlc/sql';
import type { ReplayCache } from '@idlc/sso-verification';

const DDL = `
CREATE TABLE IF NOT EXISTS sso_replay (
  issuer TEXT NOT NULL,
  credential_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (issuer, credential_id)
);
CREATE INDEX IF NOT EXISTS sso_replay_expires ON sso_replay (expires_at);`;

// A row that has expired may be taken over: the verifier refuses an expired credential before it
// gets here, so only an IdP reusing an old id after its window (allowed) can hit such a row.
const CLAIM = `INSERT INTO sso_replay (issuer, credential_id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (issuer, credential_id) DO UPDATE SET expires_at = excluded.expires_at WHERE sso_replay.expires_at <= ?`;

export interface SqlReplayCacheOptions {
  /** Expired rows are deleted at most this often (clock time). Default 60 s. */
  purgeIntervalMs?: number;
}

/**
 * The engine's {@link ReplayCache}: one row per used credential in the database, so a replay is
 * caught across restarts and across processes sharing the database. The claim is a single
 * `INSERT ... ON CONFLICT` whose changed-row count says whether this caller was first.
 */
export class SqlReplayCache implements ReplayCache {
  private lastPurgeAt: number;
  private purging = false;
  /** Rows deleted by purges so far (diagnostics, tests). */
  purged = 0;

  private constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
    private readonly purgeIntervalMs: number,
  ) {
    this.lastPurgeAt = clock.now().getTime();
  }

  static async open(db: SqlDatabase, clock: Clock, options: SqlReplayCacheOptions = {}): Promise<SqlReplayCache> {
    await db.exec(DDL);
    const cache = new SqlReplayCache(db, clock, options.purgeIntervalMs ?? 60_000);
    await cache.purge();
    return cache;
  }

  /** Claims waiting for the next commit. */
  private pending: { issuer: string; credentialId: string; expiresAt: number; resolve: (first: boolean) => void; reject: (e: unknown) => void }[] = [];

  /**
   * Claims made in the same turn of the event loop share one transaction: under load each login
   * costs one INSERT instead of one commit, and a login waits at most one turn longer. A claim is
   * answered only after the commit that holds it, so a replay is caught across restarts.
   */
  claim(issuer: string, credentialId: string, expiresAt: Date): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ issuer, credentialId, expiresAt: expiresAt.getTime(), resolve, reject });
      if (this.pending.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const now = this.clock.now().getTime();
    try {
      const firsts = await this.db.transaction(async (tx) => {
        const out: boolean[] = [];
        const inBatch = new Set<string>();
        for (const c of batch) {
          // The same credential twice in one batch: only the first can win.
          const k = `${c.issuer}\u0000${c.credentialId}`;
          if (inBatch.has(k)) {
            out.push(false);
            continue;
          }
          inBatch.add(k);
          out.push((await tx.run(CLAIM, [c.issuer, c.credentialId, c.expiresAt, now])) === 1);
        }
        return out;
      });
      batch.forEach((c, i) => c.resolve(firsts[i]));
    } catch (e) {
      for (const c of batch) c.reject(e);
    }
    if (now - this.lastPurgeAt >= this.purgeIntervalMs && !this.purging) {
      // Off the request's path: a failed purge only leaves rows for the next one.
      void this.purge().catch(() => undefined);
    }
  }

  /** Deletes rows whose window has passed; returns how many. */
  async purge(): Promise<number> {
    this.purging = true;
    try {
      const now = this.clock.now().getTime();
      this.lastPurgeAt = now;
      const n = await this.db.run('DELETE FROM sso_replay WHERE expires_at <= ?', [now]);
      this.purged += n;
      return n;
    } finally {
      this.purging = false;
    }
  }
}
