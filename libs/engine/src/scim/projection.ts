import {
  canonicalJson,
  evolve,
  GROUP_STREAM_PREFIX,
  groupIdOf,
  IDENTITY_STREAM_PREFIX,
  identityIdOf,
  IdentityState,
  initialState,
  toGroupEvent,
  toIdentityEvent,
} from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import type { Dialect, SqlExecutor } from '@idlc/sql';
import { chunk, ms, placeholders, Projection, streamsStartingIn } from '../projections/projection';
import { userDocFromState } from './mapping';
import { Doc } from './normalize';
import { GROUP_SCHEMA, USER_SCHEMA } from './schemas';
import { valueRows } from './values';

const valuesDdl = (table: string, d: Dialect) => `
CREATE TABLE IF NOT EXISTS ${table} (
  id TEXT NOT NULL,
  attr TEXT NOT NULL,
  idx INTEGER NOT NULL,
  sub TEXT NOT NULL,
  v_text TEXT,
  v_lc TEXT,
  v_num ${d === 'postgres' ? 'DOUBLE PRECISION' : 'REAL'},
  is_primary INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ${table}_lc ON ${table} (attr, sub, v_lc);
CREATE INDEX IF NOT EXISTS ${table}_text ON ${table} (attr, sub, v_text);
CREATE INDEX IF NOT EXISTS ${table}_num ON ${table} (attr, sub, v_num);
CREATE INDEX IF NOT EXISTS ${table}_id ON ${table} (id, attr, idx);
`;

/** Upper bound of members of one group event, so (position, index) orders members stably. */
const MEMBER_SLOTS = 10_000;

/**
 * The SCIM read models: Users (identities that have a SCIM resource), Groups, memberships, and one
 * row per attribute value for indexed filtering. A user's rows are tracked from the first event of
 * an identity whose stream starts with a SCIM userName key, which is how SCIM POST creates them.
 */
export class ScimProjection implements Projection {
  readonly name = 'scim';
  /** 2: each user row carries its `groups` values, so a read needs no second query. */
  readonly version = 2;
  readonly tables = ['scim_users', 'scim_user_values', 'scim_groups', 'scim_group_members', 'scim_group_values'];

  ddl(d: Dialect): string {
    return `
CREATE TABLE IF NOT EXISTS scim_users (
  id TEXT PRIMARY KEY,
  visible INTEGER NOT NULL,
  user_name TEXT,
  user_name_lc TEXT,
  external_id TEXT,
  display_name_lc TEXT,
  active INTEGER,
  created_at BIGINT,
  updated_at BIGINT,
  revision INTEGER NOT NULL,
  doc TEXT,
  groups TEXT,
  state TEXT NOT NULL
);
-- The keys provisioning clients look resources up by (userName, externalId, displayName eq), each
-- followed by the listing order (created, id): a lookup reads its rows in that order from the
-- index instead of sorting them per request. Replaces the indexes of the bare keys.
DROP INDEX IF EXISTS scim_users_user_name;
DROP INDEX IF EXISTS scim_users_external_id;
DROP INDEX IF EXISTS scim_users_display_name;
CREATE INDEX IF NOT EXISTS scim_users_user_name_listed ON scim_users (user_name_lc, visible, created_at, id);
CREATE INDEX IF NOT EXISTS scim_users_external_id_listed ON scim_users (external_id, visible, created_at, id);
CREATE INDEX IF NOT EXISTS scim_users_display_name_listed ON scim_users (display_name_lc, visible, created_at, id);
CREATE INDEX IF NOT EXISTS scim_users_created ON scim_users (created_at);
CREATE INDEX IF NOT EXISTS scim_users_updated ON scim_users (updated_at);
CREATE TABLE IF NOT EXISTS scim_groups (
  id TEXT PRIMARY KEY,
  visible INTEGER NOT NULL,
  display_name TEXT NOT NULL,
  display_name_lc TEXT NOT NULL,
  external_id TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  revision INTEGER NOT NULL
);
DROP INDEX IF EXISTS scim_groups_display_name;
DROP INDEX IF EXISTS scim_groups_external_id;
CREATE INDEX IF NOT EXISTS scim_groups_display_name_listed ON scim_groups (display_name_lc, visible, created_at, id);
CREATE INDEX IF NOT EXISTS scim_groups_external_id_listed ON scim_groups (external_id, visible, created_at, id);
CREATE INDEX IF NOT EXISTS scim_groups_created ON scim_groups (created_at);
CREATE INDEX IF NOT EXISTS scim_groups_updated ON scim_groups (updated_at);
CREATE TABLE IF NOT EXISTS scim_group_members (
  group_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  member_type TEXT NOT NULL,
  display TEXT,
  position BIGINT NOT NULL,
  PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS scim_group_members_member ON scim_group_members (member_id);
${valuesDdl('scim_user_values', d)}
${valuesDdl('scim_group_values', d)}
`;
  }

  async apply(events: StoredEvent[], tx: SqlExecutor): Promise<void> {
    const users = events.filter((e) => e.streamId.startsWith(IDENTITY_STREAM_PREFIX));
    const groups = events.filter((e) => e.streamId.startsWith(GROUP_STREAM_PREFIX));
    const membersChanged = new Set<string>();
    if (users.length) await this.applyUsers(users, streamsStartingIn(events), tx);
    if (groups.length) await this.applyGroups(groups, tx, membersChanged);
    for (const part of chunk([...membersChanged], 200)) await this.refreshUserGroups(part, tx);
  }

  /** `starting`: identities whose stream starts in this batch, so no row of theirs exists yet. */
  private async applyUsers(events: StoredEvent[], starting: Set<string>, tx: SqlExecutor): Promise<void> {
    // Whether a stream starting in this batch is a SCIM user is decided below, from its first event.
    const ids = [...new Set(events.map((e) => identityIdOf(e.streamId)))].filter((id) => !starting.has(id));
    const states = new Map<string, IdentityState>();
    for (const part of chunk(ids, 500)) {
      const rows = await tx.all<{ id: string; state: string }>(`SELECT id, state FROM scim_users WHERE id IN (${placeholders(part.length)})`, part);
      for (const r of rows) states.set(r.id, JSON.parse(r.state));
    }
    const touched = new Set<string>();
    for (const e of events) {
      const id = identityIdOf(e.streamId);
      let before = states.get(id);
      if (!before) {
        const starts = e.revision === 0 && e.type === 'ExternalKeyLinked' && (e.data as { key?: { kind?: string } }).key?.kind === 'scim-username';
        if (!starts) continue;
        before = initialState(id);
      }
      if (e.revision <= before.revision) continue; // already applied: replay-safe
      const ev = toIdentityEvent(e);
      states.set(id, ev ? evolve(before, ev, e.recordedAt.toISOString(), e.revision) : { ...before, revision: e.revision });
      touched.add(id);
    }
    for (const id of touched) {
      const s = states.get(id)!;
      const doc = userDocFromState(s);
      const prev = await tx.get<{ doc: string | null }>('SELECT doc FROM scim_users WHERE id = ?', [id]);
      const docJson = doc ? canonicalJson(doc) : null;
      await tx.run(
        `INSERT INTO scim_users (id, visible, user_name, user_name_lc, external_id, display_name_lc, active, created_at, updated_at, revision, doc, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET visible = excluded.visible, user_name = excluded.user_name, user_name_lc = excluded.user_name_lc,
           external_id = excluded.external_id, display_name_lc = excluded.display_name_lc, active = excluded.active,
           updated_at = excluded.updated_at, revision = excluded.revision, doc = excluded.doc, state = excluded.state`,
        [
          id,
          doc ? 1 : 0,
          (doc?.userName as string) ?? null,
          (doc?.userName as string | undefined)?.toLowerCase() ?? null,
          (doc?.externalId as string) ?? null,
          (doc?.displayName as string | undefined)?.toLowerCase() ?? null,
          doc ? (s.account === 'active' ? 1 : 0) : null,
          ms(s.createdAt),
          ms(s.updatedAt),
          s.revision,
          docJson,
          canonicalJson(s),
        ],
      );
      if ((prev?.doc ?? null) === docJson) continue;
      await tx.run(`DELETE FROM scim_user_values WHERE id = ? AND attr <> 'groups'`, [id]);
      if (doc) await insertValues(tx, 'scim_user_values', id, valueRows(USER_SCHEMA, doc, ['groups']));
      else {
        await tx.run('DELETE FROM scim_user_values WHERE id = ?', [id]);
        await tx.run('DELETE FROM scim_group_members WHERE member_id = ?', [id]);
      }
    }
  }

  private async applyGroups(events: StoredEvent[], tx: SqlExecutor, membersChanged: Set<string>): Promise<void> {
    const touched = new Set<string>();
    for (const e of events) {
      const id = groupIdOf(e.streamId);
      const ev = toGroupEvent(e);
      const row = await tx.get<{ revision: number }>('SELECT revision FROM scim_groups WHERE id = ?', [id]);
      if (row && e.revision <= Number(row.revision)) continue;
      if (!ev) {
        await tx.run('UPDATE scim_groups SET revision = ? WHERE id = ?', [e.revision, id]);
        continue;
      }
      const at = e.recordedAt.getTime();
      switch (ev.type) {
        case 'GroupCreated':
          if (row) continue; // a deleted group's id is never reused; a replay finds the row already there
          await tx.run(
            `INSERT INTO scim_groups (id, visible, display_name, display_name_lc, external_id, created_at, updated_at, revision) VALUES (?, 1, ?, ?, ?, ?, ?, ?)`,
            [id, ev.data.displayName, ev.data.displayName.toLowerCase(), ev.data.externalId ?? null, at, at, e.revision],
          );
          await this.addMembers(tx, id, ev.data.members, e.position, membersChanged);
          break;
        case 'GroupRenamed':
          await tx.run('UPDATE scim_groups SET display_name = ?, display_name_lc = ? WHERE id = ?', [ev.data.to, ev.data.to.toLowerCase(), id]);
          for (const r of await tx.all<{ member_id: string }>('SELECT member_id FROM scim_group_members WHERE group_id = ?', [id])) membersChanged.add(r.member_id);
          break;
        case 'GroupExternalIdChanged':
          await tx.run('UPDATE scim_groups SET external_id = ? WHERE id = ?', [ev.data.externalId, id]);
          break;
        case 'GroupMembersAdded':
          await this.addMembers(tx, id, ev.data.members, e.position, membersChanged);
          break;
        case 'GroupMembersRemoved':
          for (const part of chunk(ev.data.values, 500)) {
            await tx.run(`DELETE FROM scim_group_members WHERE group_id = ? AND member_id IN (${placeholders(part.length)})`, [id, ...part]);
            part.forEach((v) => membersChanged.add(v));
          }
          break;
        case 'GroupDeleted':
          for (const r of await tx.all<{ member_id: string }>('SELECT member_id FROM scim_group_members WHERE group_id = ?', [id])) membersChanged.add(r.member_id);
          await tx.run('DELETE FROM scim_group_members WHERE group_id = ?', [id]);
          await tx.run('DELETE FROM scim_group_members WHERE member_id = ?', [id]);
          await tx.run('DELETE FROM scim_group_values WHERE id = ?', [id]);
          // The row stays as an invisible tombstone: its revision makes a replay skip the group's events.
          await tx.run('UPDATE scim_groups SET visible = 0, revision = ?, updated_at = ?, display_name = ?, display_name_lc = ?, external_id = NULL WHERE id = ?', [
            e.revision,
            at,
            '',
            '',
            id,
          ]);
          touched.delete(id);
          continue;
      }
      await tx.run('UPDATE scim_groups SET revision = ?, updated_at = ? WHERE id = ?', [e.revision, at, id]);
      touched.add(id);
    }
    for (const id of touched) {
      const g = await tx.get<{ display_name: string }>('SELECT display_name FROM scim_groups WHERE id = ?', [id]);
      if (!g) continue;
      const members = await tx.all<{ member_id: string; member_type: string; display: string | null }>(
        'SELECT member_id, member_type, display FROM scim_group_members WHERE group_id = ? ORDER BY position',
        [id],
      );
      const doc: Doc = {
        displayName: g.display_name,
        members: members.map((m) => ({ value: m.member_id, type: m.member_type, ...(m.display ? { display: m.display } : {}) })),
      };
      await tx.run('DELETE FROM scim_group_values WHERE id = ?', [id]);
      await insertValues(tx, 'scim_group_values', id, valueRows(GROUP_SCHEMA, doc));
    }
  }

  private async addMembers(
    tx: SqlExecutor,
    groupId: string,
    members: { value: string; type: string; display?: string }[],
    position: number,
    changed: Set<string>,
  ): Promise<void> {
    let i = 0;
    for (const m of members) {
      await tx.run(
        `INSERT INTO scim_group_members (group_id, member_id, member_type, display, position) VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, member_id) DO NOTHING`,
        [groupId, m.value, m.type, m.display ?? null, position * MEMBER_SLOTS + (i++ % MEMBER_SLOTS)],
      );
      changed.add(m.value);
    }
  }

  /**
   * A user's read-only `groups` values follow its memberships (RFC 7643 4.1.2): as value rows for
   * filters, and as the JSON the user row carries for reads.
   */
  private async refreshUserGroups(ids: string[], tx: SqlExecutor): Promise<void> {
    await tx.run(`DELETE FROM scim_user_values WHERE attr = 'groups' AND id IN (${placeholders(ids.length)})`, ids);
    const rows = await tx.all<{ member_id: string; group_id: string; display_name: string }>(
      `SELECT m.member_id, m.group_id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id AND g.visible = 1
       WHERE m.member_id IN (${placeholders(ids.length)}) ORDER BY m.member_id, g.id`,
      ids,
    );
    const lists = new Map<string, UserGroup[]>(ids.map((id) => [id, []]));
    for (const r of rows) {
      const list = lists.get(r.member_id)!;
      const i = list.length;
      list.push({ value: r.group_id, display: r.display_name, type: 'direct' });
      await insertValues(tx, 'scim_user_values', r.member_id, [
        { attr: 'groups', idx: i, sub: 'value', text: r.group_id, lc: r.group_id.toLowerCase(), num: null, primary: false },
        { attr: 'groups', idx: i, sub: 'display', text: r.display_name, lc: r.display_name.toLowerCase(), num: null, primary: false },
        { attr: 'groups', idx: i, sub: 'type', text: 'direct', lc: 'direct', num: null, primary: false },
      ]);
    }
    await tx.runMany(
      'UPDATE scim_users SET groups = ? WHERE id = ?',
      [...lists].map(([id, list]) => [list.length ? JSON.stringify(list) : null, id]),
    );
  }
}

/** One of a user's `groups` values, as the `groups` column of scim_users holds them (a JSON array, or NULL for none). */
export interface UserGroup {
  value: string;
  display: string;
  type: 'direct';
}

async function insertValues(tx: SqlExecutor, table: string, id: string, rows: ReturnType<typeof valueRows>): Promise<void> {
  for (const part of chunk(rows, 100)) {
    await tx.run(
      `INSERT INTO ${table} (id, attr, idx, sub, v_text, v_lc, v_num, is_primary) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      part.flatMap((r) => [id, r.attr, r.idx, r.sub, r.text, r.lc, r.num, r.primary ? 1 : 0]),
    );
  }
}
