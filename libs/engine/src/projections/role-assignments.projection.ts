import { IDENTITY_STREAM_PREFIX, identityIdOf, roleSourceKey, toIdentityEvent } from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';
import { Projection } from './projection';

/**
 * Who holds which role, with the interval each grant was in force: answers "who held role R at
 * instant T" (access reviews) with one indexed query instead of replaying every stream.
 */
export class RoleAssignmentsProjection implements Projection {
  readonly name = 'role-assignments';
  readonly version = 1;
  readonly tables = ['role_assignments'];

  ddl(_d: Dialect): string {
    return `
CREATE TABLE IF NOT EXISTS role_assignments (
  identity_id TEXT NOT NULL,
  role TEXT NOT NULL,
  source_key TEXT NOT NULL,
  source TEXT NOT NULL,
  granted_at BIGINT NOT NULL,
  granted_position BIGINT NOT NULL,
  revoked_at BIGINT,
  revoked_position BIGINT,
  revoke_reason TEXT,
  PRIMARY KEY (identity_id, role, source_key, granted_position)
);
CREATE INDEX IF NOT EXISTS role_assignments_role ON role_assignments (role, granted_at);
CREATE INDEX IF NOT EXISTS role_assignments_open ON role_assignments (identity_id, role, source_key, revoked_at);
`;
  }

  async apply(events: StoredEvent[], tx: SqlExecutor): Promise<void> {
    for (const e of events) {
      if (!e.streamId.startsWith(IDENTITY_STREAM_PREFIX)) continue;
      if (e.type !== 'RoleGranted' && e.type !== 'RoleRevoked') continue;
      const ev = toIdentityEvent(e);
      if (!ev || (ev.type !== 'RoleGranted' && ev.type !== 'RoleRevoked')) continue;
      const id = identityIdOf(e.streamId);
      const key = roleSourceKey(ev.data.source);
      if (ev.type === 'RoleGranted') {
        await tx.run(
          `INSERT INTO role_assignments (identity_id, role, source_key, source, granted_at, granted_position)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
          [id, ev.data.role, key, JSON.stringify(ev.data.source), e.recordedAt.getTime(), e.position],
        );
      } else {
        await tx.run(
          `UPDATE role_assignments SET revoked_at = ?, revoked_position = ?, revoke_reason = ?
           WHERE identity_id = ? AND role = ? AND source_key = ? AND revoked_at IS NULL AND granted_position < ?`,
          [e.recordedAt.getTime(), e.position, ev.data.reason, id, ev.data.role, key, e.position],
        );
      }
    }
  }
}
