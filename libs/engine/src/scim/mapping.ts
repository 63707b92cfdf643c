import type { AttributeName, Attributes, IdentityState } from '@idlc/domain';
import { Doc, isObject } from './normalize';
import { ENTERPRISE_USER } from './schemas';

/**
 * How a SCIM User maps onto the engine's identity attributes. Values with no engine attribute stay
 * only in the SCIM document (ScimResourceReplaced); mapped ones are rendered from the identity, so
 * a change from another source (an SSO login, HR) shows in SCIM too.
 */
type Mapping = { attribute: AttributeName; get(doc: Doc): string | undefined; set(doc: Doc, v: string | undefined): void };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function sub(key: string, name: string): Pick<Mapping, 'get' | 'set'> {
  return {
    get: (d) => (isObject(d[key]) ? str((d[key] as Doc)[name]) : undefined),
    set: (d, v) => {
      const c: Doc = isObject(d[key]) ? { ...(d[key] as Doc) } : {};
      if (v === undefined) delete c[name];
      else c[name] = v;
      if (Object.keys(c).length) d[key] = c;
      else delete d[key];
    },
  };
}

function top(name: string): Pick<Mapping, 'get' | 'set'> {
  return {
    get: (d) => str(d[name]),
    set: (d, v) => {
      if (v === undefined) delete d[name];
      else d[name] = v;
    },
  };
}

/** The primary value of a multi-valued attribute, else its first (RFC 7643 2.4). */
function primaryIndex(list: unknown): number {
  if (!Array.isArray(list) || !list.length) return -1;
  const i = list.findIndex((x) => isObject(x) && x.primary === true);
  return i >= 0 ? i : 0;
}

function multi(name: string, field: string): Pick<Mapping, 'get' | 'set'> {
  return {
    get: (d) => {
      const i = primaryIndex(d[name]);
      return i < 0 ? undefined : str(((d[name] as unknown[])[i] as Doc)?.[field]);
    },
    set: (d, v) => {
      const list = Array.isArray(d[name]) ? (d[name] as Doc[]).map((x) => ({ ...x })) : [];
      const i = primaryIndex(list);
      if (i < 0) {
        if (v !== undefined) d[name] = [{ [field]: v, primary: true }];
        return;
      }
      if (v === undefined) delete list[i][field];
      else list[i][field] = v;
      const kept = list.filter((x) => Object.keys(x).some((k) => k !== 'primary' && k !== 'type'));
      if (kept.length) d[name] = kept;
      else delete d[name];
    },
  };
}

function ext(name: string): Pick<Mapping, 'get' | 'set'> {
  return sub(ENTERPRISE_USER, name);
}

function manager(field: 'value' | 'displayName'): Pick<Mapping, 'get' | 'set'> {
  return {
    get: (d) => {
      const e = d[ENTERPRISE_USER];
      const m = isObject(e) ? e.manager : undefined;
      return isObject(m) ? str(m[field]) : undefined;
    },
    set: (d, v) => {
      const e: Doc = isObject(d[ENTERPRISE_USER]) ? { ...(d[ENTERPRISE_USER] as Doc) } : {};
      const m: Doc = isObject(e.manager) ? { ...(e.manager as Doc) } : {};
      if (v === undefined) delete m[field];
      else m[field] = v;
      if (Object.keys(m).length) e.manager = m;
      else delete e.manager;
      if (Object.keys(e).length) d[ENTERPRISE_USER] = e;
      else delete d[ENTERPRISE_USER];
    },
  };
}

export const USER_MAPPINGS: Mapping[] = [
  { attribute: 'givenName', ...sub('name', 'givenName') },
  { attribute: 'familyName', ...sub('name', 'familyName') },
  { attribute: 'displayName', ...top('displayName') },
  { attribute: 'title', ...top('title') },
  { attribute: 'employmentType', ...top('userType') },
  { attribute: 'email', ...multi('emails', 'value') },
  { attribute: 'phone', ...multi('phoneNumbers', 'value') },
  { attribute: 'address', ...multi('addresses', 'formatted') },
  { attribute: 'location', ...multi('addresses', 'locality') },
  { attribute: 'department', ...ext('department') },
  { attribute: 'costCenter', ...ext('costCenter') },
  { attribute: 'organization', ...ext('organization') },
  { attribute: 'division', ...ext('division') },
  { attribute: 'managerId', ...manager('value') },
];

/** The identity attributes a SCIM document sets: every mapped attribute, null where it is unassigned. */
export function attributesFromDoc(doc: Doc): Partial<Record<AttributeName, string | null>> {
  const out: Partial<Record<AttributeName, string | null>> = {};
  for (const m of USER_MAPPINGS) out[m.attribute] = m.get(doc) ?? null;
  return out;
}

/** Initial attributes for ProvisionAccount (no nulls). */
export function initialAttributes(doc: Doc): Attributes {
  const out: Attributes = {};
  for (const m of USER_MAPPINGS) {
    const v = m.get(doc);
    if (v !== undefined) out[m.attribute] = v;
  }
  return out;
}

/** Whether a SCIM view of this identity exists: a SCIM resource that was not deleted. */
export const scimVisible = (s: IdentityState): boolean => !!s.scim && !s.scim.deleted && s.account !== 'deleted' && s.revision >= 0;

/**
 * The User as SCIM shows it (without id/meta/groups, added by the caller): the stored document
 * with engine attributes laid over it and `active` from the account status.
 */
export function userDocFromState(s: IdentityState): Doc | null {
  if (!scimVisible(s)) return null;
  const d: Doc = JSON.parse(JSON.stringify(s.scim!.resource));
  for (const m of USER_MAPPINGS) {
    const want = s.attributes[m.attribute];
    if (m.get(d) !== want) m.set(d, want);
  }
  // managerName has no SCIM writer (manager.displayName is read-only), but HR may set it.
  if (s.attributes.managerName) manager('displayName').set(d, s.attributes.managerName);
  const active = s.account === 'active';
  // `active` shows when the client assigned it, or when the engine itself (a saga, an operator, HR)
  // disabled the account; a client that removed it after writing false sees it unassigned.
  if ('active' in d || (!active && s.disabledReason !== 'scim')) d.active = active;
  d.schemas = ['urn:ietf:params:scim:schemas:core:2.0:User', ...(isObject(d[ENTERPRISE_USER]) ? [ENTERPRISE_USER] : [])];
  return d;
}
