import {
  exists,
  IDENTITY_STREAM_PREFIX,
  identityIdOf,
  IdentityState,
  initialState,
  keyString,
  PERSONAL_ATTRIBUTES,
  toIdentityEvent,
  evolve,
  canonicalJson,
} from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';
import { BatchContext, chunk, ms, placeholders, Projection, streamsStartingIn } from './projection';

/**
 * Personal attributes are dropped from the read model once an account is deleted. An erased
 * identity keeps them as ERASED_VALUE markers: that they existed is part of the audit record.
 */
export function publicState(s: IdentityState): IdentityState {
  if (s.account !== 'deleted' || s.erasedAt) return s;
  const attributes = { ...s.attributes };
  for (const a of PERSONAL_ATTRIBUTES) delete attributes[a];
  return { ...s, attributes };
}

/** The `state` column of these identities' rows (those that have one), in chunks under the bind limits. */
export async function readIdentityStates(tx: SqlExecutor, ids: readonly string[]): Promise<Map<string, IdentityState>> {
  const states = new Map<string, IdentityState>();
  for (const part of chunk([...ids], 500)) {
    const rows = await tx.all<{ identity_id: string; state: string }>(
      `SELECT identity_id, state FROM identities WHERE identity_id IN (${placeholders(part.length)})`,
      part,
    );
    for (const r of rows) states.set(r.identity_id, JSON.parse(r.state) as IdentityState);
  }
  return states;
}

/** Current state of every identity and account: status, attributes, keys, last login, roles with their source. */
export class IdentitiesProjection implements Projection {
  readonly name = 'identities';
  readonly version = 1;
  readonly tables = ['identities', 'identity_keys'];
  readonly deferrableIndexes = ['identities_employee', 'identities_email', 'identities_status', 'identity_keys_identity'];

  ddl(_d: Dialect): string {
    return `
CREATE TABLE IF NOT EXISTS identities (
  identity_id TEXT PRIMARY KEY,
  employee_id TEXT,
  email_lc TEXT,
  display_name TEXT,
  department TEXT,
  employment TEXT NOT NULL,
  account_status TEXT NOT NULL,
  last_login_at BIGINT,
  created_at BIGINT,
  updated_at BIGINT,
  revision INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identities_employee ON identities (employee_id);
CREATE INDEX IF NOT EXISTS identities_email ON identities (email_lc);
CREATE INDEX IF NOT EXISTS identities_status ON identities (account_status);
CREATE TABLE IF NOT EXISTS identity_keys (
  key TEXT PRIMARY KEY,
  identity_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identity_keys_identity ON identity_keys (identity_id);
`;
  }

  async apply(events: StoredEvent[], tx: SqlExecutor, ctx?: BatchContext): Promise<void> {
    const mine = events.filter((e) => e.streamId.startsWith(IDENTITY_STREAM_PREFIX));
    if (!mine.length) return;
    const starting = streamsStartingIn(events);
    const ids = [...new Set(mine.map((e) => identityIdOf(e.streamId)))].filter((id) => !starting.has(id));
    const states = await readIdentityStates(tx, ids);
    // Key links and unlinks are folded per key and written once: the last link wins outright, an
    // unlink after it in the batch cancels it, and an unlink with no link before it in the batch
    // is left to the database (it removes the row only if that identity still owns the key).
    const keys = new Map<string, { owner: string | null | undefined; unlinks: string[] }>();
    // The events of one append share their recording time: format it once per run of them.
    let atMs = NaN;
    let atIso = '';
    for (const e of mine) {
      const id = identityIdOf(e.streamId);
      const before = states.get(id) ?? initialState(id);
      if (e.revision <= before.revision) continue; // already applied: replay-safe
      const ev = toIdentityEvent(e);
      if (!ev) {
        states.set(id, { ...before, revision: e.revision });
        continue;
      }
      // The fold continues from what the row holds (personal attributes dropped once deleted), also
      // inside a batch: the result never depends on where batches happen to split.
      const t = e.recordedAt.getTime();
      if (t !== atMs) {
        atMs = t;
        atIso = e.recordedAt.toISOString();
      }
      states.set(id, publicState(evolve(before, ev, atIso, e.revision)));
      if (ev.type === 'ExternalKeyLinked') {
        keys.set(keyString(ev.data.key), { owner: id, unlinks: [] });
      } else if (ev.type === 'ExternalKeyUnlinked') {
        const k = keyString(ev.data.key);
        const o = keys.get(k);
        if (!o) keys.set(k, { owner: undefined, unlinks: [id] });
        else if (o.owner === undefined) o.unlinks.push(id);
        else if (o.owner === id) o.owner = null;
      }
    }
    const linked: unknown[][] = [];
    const unlinked: unknown[][] = [];
    const gone: unknown[][] = [];
    for (const [key, o] of keys) {
      if (o.owner) linked.push([key, o.owner]);
      else if (o.owner === null) gone.push([key]);
      else for (const id of o.unlinks) unlinked.push([key, id]);
    }
    await tx.runMany('DELETE FROM identity_keys WHERE key = ? AND identity_id = ?', unlinked);
    await tx.runMany('DELETE FROM identity_keys WHERE key = ?', gone);
    await tx.insertMany('identity_keys', ['key', 'identity_id'], linked, 'ON CONFLICT (key) DO UPDATE SET identity_id = excluded.identity_id');
    const rows: unknown[][] = [];
    for (const [id, s] of states) {
      if (!exists(s)) continue;
      ctx?.identityStates?.set(id, s);
      rows.push([
        id,
        s.employeeId ?? null,
        s.attributes.email?.toLowerCase() ?? null,
        s.attributes.displayName ?? ([s.attributes.givenName, s.attributes.familyName].filter(Boolean).join(' ') || null),
        s.attributes.department ?? null,
        s.employment,
        s.account,
        ms(s.lastLoginAt),
        ms(s.createdAt),
        ms(s.updatedAt),
        s.revision,
        canonicalJson(s),
      ]);
    }
    await tx.insertMany(
      'identities',
      ['identity_id', 'employee_id', 'email_lc', 'display_name', 'department', 'employment', 'account_status', 'last_login_at', 'created_at', 'updated_at', 'revision', 'state'],
      rows,
      `ON CONFLICT (identity_id) DO UPDATE SET employee_id = excluded.employee_id, email_lc = excluded.email_lc,
           display_name = excluded.display_name, department = excluded.department, employment = excluded.employment,
           account_status = excluded.account_status, last_login_at = excluded.last_login_at, updated_at = excluded.updated_at,
           revision = excluded.revision, state = excluded.state`,
    );
  }
}
