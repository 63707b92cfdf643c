import { IDENTITY_STREAM_PREFIX, identityIdOf, roleSourceKey, toIdentityEvent } from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';
import { Projection, streamsStartingIn } from './projection';

/**
 * Who holds which role, with the interval each grant was in force: answers "who held role R at
 * instant T" (access reviews) with one indexed query instead of replaying every stream.
 */
export class RoleAssignmentsProjection implements Projection {
  readonly name = 'role-assignments';
  readonly version = 1;
  readonly tables = ['role_assignments'];
  // Revokes find open grants through the primary key's (identity_id, role, source_key) prefix.
  readonly deferrableIndexes = ['role_assignments_role', 'role_assignments_open'];

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
    // Grants of this batch are kept in memory and revoked there; a revoke also closes, in the
    // database, the open grants of earlier batches. Rows are then inserted in one go.
    const grants: unknown[][] = [];
    const open = new Map<string, unknown[][]>();
    const revokes: unknown[][] = [];
    // A stream that starts in this batch has no grants in the table to close.
    const starting = streamsStartingIn(events);
    for (const e of events) {
      if (!e.streamId.startsWith(IDENTITY_STREAM_PREFIX)) continue;
      if (e.type !== 'RoleGranted' && e.type !== 'RoleRevoked') continue;
      const ev = toIdentityEvent(e);
      if (!ev || (ev.type !== 'RoleGranted' && ev.type !== 'RoleRevoked')) continue;
      const id = identityIdOf(e.streamId);
      const key = roleSourceKey(ev.data.source);
      const slot = `${id}\u0000${ev.data.role}\u0000${key}`;
      if (ev.type === 'RoleGranted') {
        // identity_id, role, source_key, source, granted_at, granted_position, revoked_at, revoked_position, revoke_reason
        const row: unknown[] = [id, ev.data.role, key, JSON.stringify(ev.data.source), e.recordedAt.getTime(), e.position, null, null, null];
        grants.push(row);
        const list = open.get(slot);
        if (list) list.push(row);
        else open.set(slot, [row]);
      } else {
        const at = e.recordedAt.getTime();
        for (const row of open.get(slot) ?? []) {
          row[6] = at;
          row[7] = e.position;
          row[8] = ev.data.reason;
        }
        open.delete(slot);
        if (!starting.has(id)) revokes.push([at, e.position, ev.data.reason, id, ev.data.role, key, e.position]);
      }
    }
    await tx.runMany(
      `UPDATE role_assignments SET revoked_at = ?, revoked_position = ?, revoke_reason = ?
       WHERE identity_id = ? AND role = ? AND source_key = ? AND revoked_at IS NULL AND granted_position < ?`,
      revokes,
    );
    await tx.insertMany(
      'role_assignments',
      ['identity_id', 'role', 'source_key', 'source', 'granted_at', 'granted_position', 'revoked_at', 'revoked_position', 'revoke_reason'],
      grants,
      'ON CONFLICT DO NOTHING',
    );
  }
}
