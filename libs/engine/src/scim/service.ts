import {
  decideAll,
  ExternalKey,
  GroupCommand,
  GroupMember,
  groupExists,
  GroupState,
  IdentityCommand,
  IdentityState,
  initialState,
  keyString,
  Rejection,
} from '@idlc/domain';
import { EventMetadata, newId } from '@idlc/event-store';
import type { Engine } from '../engine';
import { DuplicateKeyError } from '../identity/identity-commands';
import { parseAttributeList, projectAttributes } from './attributes';
import { badRequest, notFound, ScimError } from './errors';
import { FilterTranslator, SqlModel } from './filter-sql';
import { placeholders } from '../projections/projection';
import { GroupCommands } from './group-commands';
import { attributesFromDoc, initialAttributes, scimVisible, userDocFromState } from './mapping';
import { Doc, isObject, normalizeResource } from './normalize';
import { applyPatch, parsePatchBody } from './patch';
import { parseFilter } from './paths';
import type { UserGroup } from './projection';
import {
  CORE_GROUP,
  DEFAULT_COUNT,
  GROUP_SCHEMA,
  LIST_RESPONSE,
  MAX_RESULTS,
  PATCH_OP,
  SEARCH_REQUEST,
  USER_SCHEMA,
} from './schemas';

/** Who is asking: recorded as event metadata. */
export interface ScimCaller {
  actor: string;
  correlationId: string;
}

export interface ScimResult {
  resource: Doc;
  /** W/"<revision>": meta.version and the ETag header. */
  version: string;
  location: string;
}

export interface ListParams {
  filter?: string;
  sortBy?: string;
  sortOrder?: string;
  startIndex?: number;
  count?: number;
  attributes?: string[];
  excludedAttributes?: string[];
  /** A root /.search: terms on attributes a type lacks match nothing of that type. */
  acrossTypes?: boolean;
}

export interface ListResult {
  schemas: string[];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: Doc[];
}

const ID = /^[A-Za-z0-9-]{1,64}$/;
export const etag = (revision: number) => `W/"${revision}"`;

/** If-Match: `*`, or a list of (weak) entity tags; true when the current revision is among them. */
export function ifMatchSatisfied(header: string | undefined, revision: number): boolean {
  if (header === undefined) return true;
  const tags = header.split(',').map((t) => t.trim());
  return tags.some((t) => t === '*' || t.replace(/^W\//, '') === `"${revision}"`);
}

export const USERS_SQL: SqlModel = {
  schema: USER_SCHEMA,
  alias: 'u',
  valuesTable: 'scim_user_values',
  columns: {
    id: { col: 'id', type: 'string', caseExact: true },
    externalid: { col: 'external_id', type: 'string', caseExact: true },
    username: { col: 'user_name_lc', type: 'string', caseExact: false, lowered: true },
    displayname: { col: 'display_name_lc', type: 'string', caseExact: false, lowered: true },
    active: { col: 'active', type: 'boolean', caseExact: false },
    'meta.created': { col: 'created_at', type: 'dateTime', caseExact: false },
    'meta.lastmodified': { col: 'updated_at', type: 'dateTime', caseExact: false },
  },
};

export const GROUPS_SQL: SqlModel = {
  schema: GROUP_SCHEMA,
  alias: 'g',
  valuesTable: 'scim_group_values',
  columns: {
    id: { col: 'id', type: 'string', caseExact: true },
    externalid: { col: 'external_id', type: 'string', caseExact: true },
    displayname: { col: 'display_name_lc', type: 'string', caseExact: false, lowered: true },
    'meta.created': { col: 'created_at', type: 'dateTime', caseExact: false },
    'meta.lastmodified': { col: 'updated_at', type: 'dateTime', caseExact: false },
  },
};

const iso = (msValue: unknown) => new Date(Number(msValue)).toISOString();

/** Validates the paging and sorting parameters of a query or search (RFC 7644 3.4.2.3, 3.4.2.4). */
export function listParams(q: Record<string, unknown>): ListParams {
  const int = (name: string): number | undefined => {
    const v = q[name];
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isInteger(n)) throw badRequest('invalidValue', `${name} must be an integer`);
    return n;
  };
  const str = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw badRequest('invalidValue', `${name} must be a string`);
    return v;
  };
  const sortOrder = str('sortOrder');
  if (sortOrder && !/^(ascending|descending)$/i.test(sortOrder)) throw badRequest('invalidValue', 'sortOrder must be ascending or descending');
  return {
    filter: str('filter'),
    sortBy: str('sortBy'),
    sortOrder,
    startIndex: int('startIndex'),
    count: int('count'),
    attributes: parseAttributeList(q.attributes),
    excludedAttributes: parseAttributeList(q.excludedAttributes),
  };
}

/** The SCIM service provider: every write becomes commands on identity or group streams; every read comes from the SCIM read models. */
export class ScimService {
  readonly groups: GroupCommands;

  constructor(private readonly engine: Engine) {
    this.groups = new GroupCommands(engine.store, engine.clock);
  }

  private meta(caller: ScimCaller, action: string): EventMetadata {
    return { source: 'scim', actor: caller.actor, correlationId: caller.correlationId, action };
  }

  /** Read-after-write: the next GET or list must see this write. */
  private async settled(table: 'scim_users' | 'scim_groups', id: string, revision: number): Promise<void> {
    if (this.engine.config.workerMode !== 'api') return this.engine.projections.caughtUp();
    // Projections run in a worker process: wait (bounded) until it has applied this revision.
    for (let i = 0; i < 100; i++) {
      const row = await this.engine.readDb.get<{ revision: number }>(`SELECT revision FROM ${table} WHERE id = ?`, [id]);
      if (row && Number(row.revision) >= revision) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // ---------------------------------------------------------------- Users

  private async userState(id: string): Promise<IdentityState> {
    if (!ID.test(id)) throw notFound(`User ${id} not found`);
    const s = await this.engine.repository.loadCurrent(id);
    if (!scimVisible(s)) throw notFound(`User ${id} not found`);
    return s;
  }

  private renderUser(id: string, doc: Doc, created: string, updated: string, revision: number, groups: UserGroup[], base: string): Doc {
    const out: Doc = { schemas: doc.schemas, id };
    if (doc.externalId !== undefined) out.externalId = doc.externalId;
    // Schema order reads better than the stored (sorted) order.
    for (const a of USER_SCHEMA.attributes) if (doc[a.name] !== undefined) out[a.name] = doc[a.name];
    for (const e of USER_SCHEMA.extensions) if (doc[e.urn] !== undefined) out[e.urn] = doc[e.urn];
    if (groups.length) out.groups = groups.map((g) => ({ ...g, $ref: `${base}/Groups/${g.value}` }));
    out.meta = { resourceType: 'User', created, lastModified: updated, location: `${base}/Users/${id}`, version: etag(revision) };
    return out;
  }

  /** The `groups` column of a scim_users row. */
  private static groupsOf(json: string | null | undefined): UserGroup[] {
    return json ? (JSON.parse(json) as UserGroup[]) : [];
  }

  async getUser(id: string, base: string, attrs: { attributes?: string[]; excludedAttributes?: string[] } = {}): Promise<ScimResult> {
    if (!ID.test(id)) throw notFound(`User ${id} not found`);
    const row = await this.engine.readDb.get<{ doc: string; groups: string | null; created_at: number; updated_at: number; revision: number }>(
      'SELECT doc, groups, created_at, updated_at, revision FROM scim_users WHERE id = ? AND visible = 1',
      [id],
    );
    if (!row) throw notFound(`User ${id} not found`);
    const groups = ScimService.groupsOf(row.groups);
    const resource = this.renderUser(id, JSON.parse(row.doc), iso(row.created_at), iso(row.updated_at), Number(row.revision), groups, base);
    return { resource: projectAttributes(USER_SCHEMA, resource, attrs.attributes, attrs.excludedAttributes), version: etag(Number(row.revision)), location: `${base}/Users/${id}` };
  }

  /** The response to a write: from the read model once it has the write, else from the state itself. */
  private async userAfterWrite(s: IdentityState, base: string, attrs: ListParams): Promise<ScimResult> {
    await this.settled('scim_users', s.identityId, s.revision);
    try {
      const r = await this.getUser(s.identityId, base, attrs);
      if (r.version === etag(s.revision)) return r;
    } catch (e) {
      if (!(e instanceof ScimError)) throw e;
    }
    const doc = userDocFromState(s)!;
    const resource = this.renderUser(s.identityId, doc, s.createdAt!, s.updatedAt!, s.revision, [], base);
    return { resource: projectAttributes(USER_SCHEMA, resource, attrs.attributes, attrs.excludedAttributes), version: etag(s.revision), location: `${base}/Users/${s.identityId}` };
  }

  async createUser(body: unknown, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const { doc } = normalizeResource(USER_SCHEMA, body);
    const userName = doc.userName as string;
    const keys: ExternalKey[] = [{ kind: 'scim-username', value: userName }];
    if (typeof doc.externalId === 'string') keys.push({ kind: 'scim-external', value: doc.externalId });
    for (const k of keys) {
      if (await this.engine.commands.findByKey(keyString(k))) throw new ScimError(409, 'uniqueness', `${k.kind === 'scim-username' ? 'userName' : 'externalId'} ${k.value} is already taken`);
    }
    const id = newId();
    const cmds: IdentityCommand[] = [
      { kind: 'ProvisionAccount', source: 'scim', attributes: initialAttributes(doc), keys },
      { kind: 'ReplaceScimResource', resource: doc },
    ];
    if (doc.active === false) cmds.push({ kind: 'DisableAccount', reason: 'scim', source: 'scim' });
    const out = await this.run(id, initialState(id), cmds, this.meta(caller, 'scim-create-user'));
    return this.userAfterWrite(out, base, attrs);
  }

  /** The commands that turn a SCIM user into `next`; keys follow userName and externalId. */
  private userCommands(s: IdentityState, next: Doc): IdentityCommand[] {
    const prev = s.scim!.resource;
    const cmds: IdentityCommand[] = [{ kind: 'ExpectRevision', revision: s.revision }];
    const oldName = prev.userName as string;
    const newName = next.userName as string;
    if (oldName.toLowerCase() !== newName.toLowerCase()) {
      cmds.push({ kind: 'UnlinkKey', key: { kind: 'scim-username', value: oldName } }, { kind: 'LinkKey', key: { kind: 'scim-username', value: newName } });
    }
    if (prev.externalId !== next.externalId) {
      if (typeof prev.externalId === 'string') cmds.push({ kind: 'UnlinkKey', key: { kind: 'scim-external', value: prev.externalId } });
      if (typeof next.externalId === 'string') cmds.push({ kind: 'LinkKey', key: { kind: 'scim-external', value: next.externalId } });
    }
    cmds.push({ kind: 'ChangeAttributes', attributes: attributesFromDoc(next), source: 'scim' });
    cmds.push({ kind: 'ReplaceScimResource', resource: next });
    if (next.active === false && s.account === 'active') cmds.push({ kind: 'DisableAccount', reason: 'scim', source: 'scim' });
    if (next.active === true && s.account === 'disabled') cmds.push({ kind: 'EnableAccount', reason: 'scim', source: 'scim' });
    return cmds;
  }

  /**
   * Runs identity commands so that a refusal appends nothing: they are decided on the loaded state
   * first, and the real run starts with ExpectRevision (a concurrent change makes it `stale`).
   */
  private async run(id: string, state: IdentityState, cmds: IdentityCommand[], metadata: EventMetadata): Promise<IdentityState> {
    const policies = this.engine.policies;
    const dry = decideAll(state, cmds, { now: this.engine.clock.now(), birthright: policies.birthright(), lifecycle: policies.lifecycle() });
    if (dry.rejection) throw rejectionError(dry.rejection);
    try {
      const out = await this.engine.commands.execute(id, cmds, { metadata });
      if (out.rejection) throw rejectionError(out.rejection);
      return out.state;
    } catch (e) {
      if (e instanceof DuplicateKeyError) {
        throw new ScimError(409, 'uniqueness', e.key.startsWith('scim-username:') ? 'userName is already taken' : 'externalId is already taken');
      }
      throw e;
    }
  }

  /** Read-modify-write of a user: retried on a concurrent change unless the client pinned a version. */
  private async modifyUser(id: string, ifMatch: string | undefined, caller: ScimCaller, action: string, change: (doc: Doc, s: IdentityState) => Doc | null): Promise<IdentityState> {
    for (let attempt = 1; ; attempt++) {
      const s = await this.userState(id);
      if (!ifMatchSatisfied(ifMatch, s.revision)) throw new ScimError(412, undefined, `User ${id} is at version ${etag(s.revision)}`);
      const next = change(userDocFromState(s)!, s);
      if (!next) return s;
      try {
        return await this.run(id, s, this.userCommands(s, next), this.meta(caller, action));
      } catch (e) {
        if (e instanceof ScimError && e.status === 412 && ifMatch === undefined && attempt < 5) {
          this.engine.repository.forget(id);
          continue;
        }
        throw e;
      }
    }
  }

  async replaceUser(id: string, body: unknown, ifMatch: string | undefined, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const { doc } = normalizeResource(USER_SCHEMA, body);
    const s = await this.modifyUser(id, ifMatch, caller, 'scim-replace-user', () => doc);
    return this.userAfterWrite(s, base, attrs);
  }

  async patchUser(id: string, body: unknown, ifMatch: string | undefined, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const ops = parsePatchBody(body, PATCH_OP);
    const s = await this.modifyUser(id, ifMatch, caller, 'scim-patch-user', (current) => {
      if (!ops.length) return null;
      return normalizeResource(USER_SCHEMA, applyPatch(USER_SCHEMA, current, ops)).doc;
    });
    return this.userAfterWrite(s, base, attrs);
  }

  async deleteUser(id: string, ifMatch: string | undefined, caller: ScimCaller): Promise<void> {
    const s0 = await this.userState(id);
    if (!ifMatchSatisfied(ifMatch, s0.revision)) throw new ScimError(412, undefined, `User ${id} is at version ${etag(s0.revision)}`);
    // The user leaves its groups first, so their roles are revoked with the group as the reason.
    const memberships = await this.engine.readDb.all<{ group_id: string }>('SELECT group_id FROM scim_group_members WHERE member_id = ?', [id]);
    for (const m of memberships) await this.changeGroup(m.group_id, [{ kind: 'RemoveGroupMembers', values: [id] }], caller, 'scim-delete-user');
    const mode = this.engine.config.scimDeleteMode;
    for (let attempt = 1; ; attempt++) {
      const s = await this.userState(id);
      const res = s.scim!.resource;
      const cmds: IdentityCommand[] = [{ kind: 'ExpectRevision', revision: s.revision }];
      // The keys are released, so the client may create a user with the same userName again.
      cmds.push({ kind: 'UnlinkKey', key: { kind: 'scim-username', value: res.userName as string } });
      if (typeof res.externalId === 'string') cmds.push({ kind: 'UnlinkKey', key: { kind: 'scim-external', value: res.externalId } });
      cmds.push({ kind: 'DeleteScimResource', mode });
      cmds.push(mode === 'delete' ? { kind: 'DeleteAccount', reason: 'scim', source: 'scim' } : { kind: 'DisableAccount', reason: 'scim', source: 'scim' });
      try {
        const after = await this.run(id, s, cmds, this.meta(caller, 'scim-delete-user'));
        await this.settled('scim_users', id, after.revision);
        return;
      } catch (e) {
        if (e instanceof ScimError && e.status === 412 && ifMatch === undefined && attempt < 5) {
          this.engine.repository.forget(id);
          continue;
        }
        throw e;
      }
    }
  }

  async listUsers(p: ListParams, base: string): Promise<ListResult> {
    const page = await this.query(USERS_SQL, 'scim_users', p);
    const resources = page.rows.map((r) =>
      projectAttributes(
        USER_SCHEMA,
        this.renderUser(r.id, JSON.parse(r.doc!), iso(r.created_at), iso(r.updated_at), Number(r.revision), ScimService.groupsOf(r.groups), base),
        p.attributes,
        p.excludedAttributes,
      ),
    );
    return listResponse(page.total, page.startIndex, resources);
  }

  // ---------------------------------------------------------------- queries

  private async query(
    model: SqlModel,
    table: string,
    p: ListParams,
  ): Promise<{ total: number; startIndex: number; rows: { id: string; doc?: string; groups?: string | null; display_name?: string; external_id?: string | null; created_at: number; updated_at: number; revision: number }[] }> {
    const startIndex = Math.max(1, p.startIndex ?? 1);
    const count = Math.min(Math.max(0, p.count ?? DEFAULT_COUNT), MAX_RESULTS);
    const t = new FilterTranslator(model, this.engine.readDb.dialect, p.acrossTypes);
    const where: string[] = [`${model.alias}.visible = 1`];
    const params: unknown[] = [];
    if (p.filter !== undefined) {
      const f = t.translate(parseFilter(p.filter));
      where.push(f.sql);
      params.push(...f.params);
    }
    const whereSql = where.join(' AND ');
    const countAll = async () => Number((await this.engine.readDb.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} ${model.alias} WHERE ${whereSql}`, params))?.n ?? 0);
    if (count === 0) return { total: await countAll(), startIndex, rows: [] };
    const order: string[] = [];
    const orderParams: unknown[] = [];
    if (p.sortBy) {
      const s = t.sortExpr(p.sortBy);
      const desc = p.sortOrder?.toLowerCase() === 'descending';
      // Unassigned values sort last in both orders.
      order.push(`(CASE WHEN ${s.sql} IS NULL THEN 1 ELSE 0 END)`, `${s.sql} ${desc ? 'DESC' : 'ASC'}`);
      orderParams.push(...s.params, ...s.params);
    }
    order.push(`${model.alias}.created_at`, `${model.alias}.id`);
    const cols = table === 'scim_users' ? 'u.id, u.doc, u.groups, u.created_at, u.updated_at, u.revision' : 'g.id, g.display_name, g.external_id, g.created_at, g.updated_at, g.revision';
    const rows = await this.engine.readDb.all<any>(
      `SELECT ${cols} FROM ${table} ${model.alias} WHERE ${whereSql} ORDER BY ${order.join(', ')} LIMIT ? OFFSET ?`,
      [...params, ...orderParams, count, startIndex - 1],
    );
    // A first page that is not full holds every match (the common `userName eq` lookup): no COUNT needed.
    const total = startIndex === 1 && rows.length < count ? rows.length : await countAll();
    return { total, startIndex, rows };
  }

  // ---------------------------------------------------------------- Groups

  private roleFor(displayName: string): string {
    return this.engine.config.scimGroupRoleMap[displayName] ?? displayName;
  }

  private renderGroup(row: { id: string; display_name: string; external_id?: string | null; created_at: number; updated_at: number; revision: number }, members: Doc[], base: string): Doc {
    const out: Doc = { schemas: [CORE_GROUP], id: row.id };
    if (row.external_id) out.externalId = row.external_id;
    out.displayName = row.display_name;
    if (members.length) {
      out.members = members.map((m) => ({ value: m.value, $ref: `${base}/${m.type === 'Group' ? 'Groups' : 'Users'}/${m.value}`, type: m.type, ...(m.display ? { display: m.display } : {}) }));
    }
    out.meta = { resourceType: 'Group', created: iso(row.created_at), lastModified: iso(row.updated_at), location: `${base}/Groups/${row.id}`, version: etag(Number(row.revision)) };
    return out;
  }

  private async groupMembers(ids: string[]): Promise<Map<string, Doc[]>> {
    const out = new Map<string, Doc[]>();
    if (!ids.length) return out;
    // Only members that still exist: a deleted user or group drops out of every group.
    const rows = await this.engine.readDb.all<{ group_id: string; member_id: string; member_type: string; display: string | null }>(
      `SELECT m.group_id, m.member_id, m.member_type, m.display FROM scim_group_members m
       WHERE m.group_id IN (${placeholders(ids.length)})
         AND ((m.member_type = 'User' AND EXISTS (SELECT 1 FROM scim_users u WHERE u.id = m.member_id AND u.visible = 1))
           OR (m.member_type = 'Group' AND EXISTS (SELECT 1 FROM scim_groups x WHERE x.id = m.member_id AND x.visible = 1)))
       ORDER BY m.group_id, m.position`,
      ids,
    );
    for (const r of rows) out.set(r.group_id, [...(out.get(r.group_id) ?? []), { value: r.member_id, type: r.member_type, display: r.display ?? undefined }]);
    return out;
  }

  async getGroup(id: string, base: string, attrs: { attributes?: string[]; excludedAttributes?: string[] } = {}): Promise<ScimResult> {
    if (!ID.test(id)) throw notFound(`Group ${id} not found`);
    const row = await this.engine.readDb.get<any>('SELECT id, display_name, external_id, created_at, updated_at, revision FROM scim_groups WHERE id = ? AND visible = 1', [id]);
    if (!row) throw notFound(`Group ${id} not found`);
    const members = (await this.groupMembers([id])).get(id) ?? [];
    const resource = this.renderGroup(row, members, base);
    return { resource: projectAttributes(GROUP_SCHEMA, resource, attrs.attributes, attrs.excludedAttributes), version: etag(Number(row.revision)), location: `${base}/Groups/${id}` };
  }

  async listGroups(p: ListParams, base: string): Promise<ListResult> {
    const page = await this.query(GROUPS_SQL, 'scim_groups', p);
    const wantsMembers = !(p.excludedAttributes ?? []).some((a) => a.toLowerCase() === 'members') && (!p.attributes || p.attributes.some((a) => a.toLowerCase().startsWith('members')));
    const members = wantsMembers ? await this.groupMembers(page.rows.map((r) => r.id)) : new Map<string, Doc[]>();
    const resources = page.rows.map((r) => projectAttributes(GROUP_SCHEMA, this.renderGroup(r as any, members.get(r.id) ?? [], base), p.attributes, p.excludedAttributes));
    return listResponse(page.total, page.startIndex, resources);
  }

  /** Members the client named that exist, typed by what they are; unknown ids are dropped (not an error). */
  private async resolveMembers(list: unknown): Promise<GroupMember[]> {
    const out: GroupMember[] = [];
    for (const m of Array.isArray(list) ? list : []) {
      if (!isObject(m) || typeof m.value !== 'string' || !ID.test(m.value)) continue;
      const want = typeof m.type === 'string' ? m.type.toLowerCase() : undefined;
      let type: 'User' | 'Group' | undefined;
      if (want !== 'group' && scimVisible(await this.engine.repository.load(m.value))) type = 'User';
      else if (want !== 'user' && groupExists(await this.groups.load(m.value))) type = 'Group';
      if (!type) continue;
      out.push({ value: m.value, type, ...(typeof m.display === 'string' && m.display ? { display: m.display } : {}) });
    }
    return out;
  }

  private groupDoc(s: GroupState): Doc {
    const d: Doc = { schemas: [CORE_GROUP], displayName: s.displayName };
    if (s.externalId) d.externalId = s.externalId;
    if (s.members.length) d.members = s.members.map((m) => ({ value: m.value, type: m.type, ...(m.display ? { display: m.display } : {}) }));
    return d;
  }

  /**
   * Appends group events, then grants or revokes the group's role on each member identity (source
   * scim-group, so birthright recomputation never touches it).
   */
  private async changeGroup(groupId: string, cmds: GroupCommand[], caller: ScimCaller, action: string): Promise<GroupState> {
    const before = await this.groups.load(groupId);
    const out = await this.groups.execute(groupId, cmds, this.meta(caller, action));
    if (out.rejection) {
      if (out.rejection.code === 'stale') throw new ScimError(412, undefined, out.rejection.message);
      if (out.rejection.code === 'not_found') throw notFound(`Group ${groupId} not found`);
      throw badRequest('invalidValue', out.rejection.message);
    }
    let name = before.displayName;
    let members = new Map(before.members.map((m) => [m.value, m]));
    const source = { kind: 'scim-group' as const, groupId };
    const grants = new Map<string, IdentityCommand[]>();
    const push = (id: string, c: IdentityCommand) => grants.set(id, [...(grants.get(id) ?? []), c]);
    for (const { event: e } of out.events) {
      switch (e.type) {
        case 'GroupCreated':
          name = e.data.displayName;
          members = new Map(e.data.members.map((m) => [m.value, m]));
          for (const m of e.data.members) if (m.type === 'User') push(m.value, { kind: 'GrantRole', role: this.roleFor(name), source });
          break;
        case 'GroupMembersAdded':
          for (const m of e.data.members) {
            members.set(m.value, m);
            if (m.type === 'User') push(m.value, { kind: 'GrantRole', role: this.roleFor(name), source });
          }
          break;
        case 'GroupMembersRemoved':
          for (const v of e.data.values) {
            if (members.get(v)?.type === 'User') push(v, { kind: 'RevokeRole', role: this.roleFor(name), source });
            members.delete(v);
          }
          break;
        case 'GroupRenamed': {
          const from = this.roleFor(e.data.from);
          const to = this.roleFor(e.data.to);
          name = e.data.to;
          if (from === to) break;
          for (const m of members.values()) {
            if (m.type !== 'User') continue;
            push(m.value, { kind: 'RevokeRole', role: from, source });
            push(m.value, { kind: 'GrantRole', role: to, source });
          }
          break;
        }
        default:
          break;
      }
    }
    for (const [identityId, list] of grants) {
      // A member whose account is deleted or terminated holds no roles: its refusal is expected.
      const out = await this.engine.commands.execute(identityId, list, { metadata: this.meta(caller, action) });
      void out;
    }
    if (out.events.length) await this.settled('scim_groups', groupId, out.state.revision);
    return out.state;
  }

  private async groupAfterWrite(s: GroupState, base: string, attrs: ListParams): Promise<ScimResult> {
    await this.settled('scim_groups', s.groupId, s.revision);
    return this.getGroup(s.groupId, base, attrs);
  }

  async createGroup(body: unknown, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const { doc } = normalizeResource(GROUP_SCHEMA, body);
    const members = await this.resolveMembers(doc.members);
    const id = newId();
    const s = await this.changeGroup(
      id,
      [{ kind: 'CreateGroup', displayName: doc.displayName as string, externalId: doc.externalId as string | undefined, members }],
      caller,
      'scim-create-group',
    );
    return this.groupAfterWrite(s, base, attrs);
  }

  private async groupCommands(s: GroupState, next: Doc): Promise<GroupCommand[]> {
    const cmds: GroupCommand[] = [{ kind: 'ExpectGroupRevision', revision: s.revision }];
    if (next.displayName !== s.displayName) cmds.push({ kind: 'RenameGroup', displayName: next.displayName as string });
    if ((next.externalId ?? undefined) !== s.externalId) cmds.push({ kind: 'SetGroupExternalId', externalId: (next.externalId as string | undefined) ?? null });
    const wanted = Array.isArray(next.members) ? (next.members as Doc[]) : [];
    const current = new Set(s.members.map((m) => m.value));
    const keep = s.members.filter((m) => wanted.some((w) => w.value === m.value));
    const added = await this.resolveMembers(wanted.filter((w) => !current.has(w.value as string)));
    cmds.push({ kind: 'ReplaceGroupMembers', members: [...keep, ...added] });
    return cmds;
  }

  private async modifyGroup(id: string, ifMatch: string | undefined, caller: ScimCaller, action: string, change: (doc: Doc) => Doc | null): Promise<GroupState> {
    for (let attempt = 1; ; attempt++) {
      const s = ID.test(id) ? await this.groups.load(id) : null;
      if (!s || !groupExists(s)) throw notFound(`Group ${id} not found`);
      if (!ifMatchSatisfied(ifMatch, s.revision)) throw new ScimError(412, undefined, `Group ${id} is at version ${etag(s.revision)}`);
      const next = change(this.groupDoc(s));
      if (!next) return s;
      try {
        return await this.changeGroup(id, await this.groupCommands(s, next), caller, action);
      } catch (e) {
        if (e instanceof ScimError && e.status === 412 && ifMatch === undefined && attempt < 5) continue;
        throw e;
      }
    }
  }

  async replaceGroup(id: string, body: unknown, ifMatch: string | undefined, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const { doc } = normalizeResource(GROUP_SCHEMA, body);
    const s = await this.modifyGroup(id, ifMatch, caller, 'scim-replace-group', () => doc);
    return this.groupAfterWrite(s, base, attrs);
  }

  async patchGroup(id: string, body: unknown, ifMatch: string | undefined, base: string, caller: ScimCaller, attrs: ListParams = {}): Promise<ScimResult> {
    const ops = parsePatchBody(body, PATCH_OP);
    const s = await this.modifyGroup(id, ifMatch, caller, 'scim-patch-group', (current) => {
      if (!ops.length) return null;
      return normalizeResource(GROUP_SCHEMA, applyPatch(GROUP_SCHEMA, current, ops)).doc;
    });
    return this.groupAfterWrite(s, base, attrs);
  }

  async deleteGroup(id: string, ifMatch: string | undefined, caller: ScimCaller): Promise<void> {
    const s = ID.test(id) ? await this.groups.load(id) : null;
    if (!s || !groupExists(s)) throw notFound(`Group ${id} not found`);
    if (!ifMatchSatisfied(ifMatch, s.revision)) throw new ScimError(412, undefined, `Group ${id} is at version ${etag(s.revision)}`);
    await this.changeGroup(id, [...(ifMatch ? [{ kind: 'ExpectGroupRevision' as const, revision: s.revision }] : []), { kind: 'DeleteGroup' }], caller, 'scim-delete-group');
  }

  // ---------------------------------------------------------------- search

  /** POST /.search (RFC 7644 3.4.3): the body carries what a GET query would. */
  static searchParams(body: unknown): ListParams {
    if (!isObject(body)) throw badRequest('invalidSyntax', 'the request body must be a JSON object');
    const schemas = body.schemas;
    if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === SEARCH_REQUEST.toLowerCase())) {
      throw badRequest('invalidSyntax', `schemas must contain ${SEARCH_REQUEST}`);
    }
    return listParams(body);
  }

  /** A search at the root covers Users and Groups; a filter naming an attribute one type lacks matches none of that type. */
  async searchAll(p: ListParams, base: string): Promise<ListResult> {
    const startIndex = Math.max(1, p.startIndex ?? 1);
    const count = Math.min(Math.max(0, p.count ?? DEFAULT_COUNT), MAX_RESULTS);
    p = { ...p, acrossTypes: true };
    const attempt = async (fn: (q: ListParams) => Promise<ListResult>, q: ListParams): Promise<ListResult | ScimError> => {
      try {
        return await fn(q);
      } catch (e) {
        if (e instanceof ScimError && e.scimType === 'invalidFilter') return e;
        throw e;
      }
    };
    const users = await attempt((q) => this.listUsers(q, base), { ...p, startIndex: 1, count: 0 });
    const groups = await attempt((q) => this.listGroups(q, base), { ...p, startIndex: 1, count: 0 });
    if (users instanceof ScimError && groups instanceof ScimError) throw users;
    const nu = users instanceof ScimError ? 0 : users.totalResults;
    const ng = groups instanceof ScimError ? 0 : groups.totalResults;
    const resources: Doc[] = [];
    if (count > 0 && startIndex <= nu) {
      const r = (await this.listUsers({ ...p, startIndex, count }, base)).Resources;
      resources.push(...r);
    }
    const left = count - resources.length;
    if (left > 0 && ng > 0 && startIndex + resources.length > nu) {
      const gStart = startIndex + resources.length - nu;
      resources.push(...(await this.listGroups({ ...p, startIndex: gStart, count: left }, base)).Resources);
    }
    return listResponse(nu + ng, startIndex, resources);
  }
}

function listResponse(total: number, startIndex: number, resources: Doc[]): ListResult {
  return { schemas: [LIST_RESPONSE], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

function rejectionError(r: Rejection): ScimError {
  switch (r.code) {
    case 'stale':
      return new ScimError(412, undefined, r.message);
    case 'not_found':
    case 'account_deleted':
      return notFound(r.message);
    case 'invalid':
      return badRequest('invalidValue', r.message);
    default:
      // terminated, not yet active, ...: the identity's lifecycle forbids it.
      return new ScimError(409, undefined, r.message);
  }
}

