import { Attributes, PERSONAL_ATTRIBUTES } from './attributes';

/**
 * Personal data inside identity events: which values are personal (encrypted at rest, erasable),
 * and how an erased value reads back. Pure: the engine does the cryptography.
 *
 * Every value is named by its path inside the event's data: object keys joined with '.', array
 * indices left out (`attributes.email`, `changes.email.to`, `resource.emails.value`). The engine
 * binds each ciphertext to its identity and this path, so a value cannot be moved to another
 * identity or another field without failing authentication.
 */

/** What a personal value whose identity was erased reads as, everywhere. */
export const ERASED_VALUE = '[erased]';

const PERSONAL = new Set<string>(PERSONAL_ATTRIBUTES);

/** Replaces every string leaf for which fn returns another string; containers are copied only when something under them changed. */
export function mapStringLeaves(value: unknown, fn: (s: string, path: string) => string, path = ''): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const m = typeof v === 'string' ? fn(v, path) : v && typeof v === 'object' ? mapStringLeaves(v, fn, path) : v;
      if (m !== v) (out ??= value.slice())[i] = m;
    }
    return out ?? value;
  }
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      const p = path ? `${path}.${k}` : k;
      const m = typeof v === 'string' ? fn(v, p) : v && typeof v === 'object' ? mapStringLeaves(v, fn, p) : v;
      if (m !== v) (out ??= { ...obj })[k] = m;
    }
    return out ?? value;
  }
  return value;
}

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:user';

/**
 * Paths of a SCIM User (ScimResourceReplaced.resource, lower-cased) that are NOT personal. Everything
 * else that is a string is treated as personal (userName, name.*, displayName, nickName, emails,
 * phone numbers, street addresses, photos, ims, certificates, manager.displayName, unknown
 * extension attributes): deny by default, since clients send attributes this list never heard of.
 */
const SCIM_PUBLIC_PATHS = new Set([
  'schemas',
  'externalid',
  'usertype',
  'title',
  'preferredlanguage',
  'locale',
  'timezone',
  'emails.type',
  'phonenumbers.type',
  'ims.type',
  'photos.type',
  'x509certificates.type',
  'addresses.type',
  'addresses.locality',
  'addresses.region',
  'addresses.country',
  'roles.value',
  'roles.display',
  'roles.type',
  'entitlements.value',
  'entitlements.display',
  'entitlements.type',
  `${ENTERPRISE}.employeenumber`,
  `${ENTERPRISE}.costcenter`,
  `${ENTERPRISE}.organization`,
  `${ENTERPRISE}.division`,
  `${ENTERPRISE}.department`,
  `${ENTERPRISE}.manager.value`,
]);

export type PersonalValueFn = (value: string, path: string) => string;

function mapAttributes(attrs: unknown, prefix: string, fn: PersonalValueFn): unknown {
  if (!attrs || typeof attrs !== 'object') return attrs;
  const a = attrs as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(a)) {
    const v = a[k];
    if (!PERSONAL.has(k) || typeof v !== 'string') continue;
    const m = fn(v, `${prefix}.${k}`);
    if (m !== v) (out ??= { ...a })[k] = m;
  }
  return out ?? attrs;
}

function mapChanges(changes: unknown, fn: PersonalValueFn): unknown {
  if (!changes || typeof changes !== 'object') return changes;
  const c = changes as Record<string, { from?: unknown; to?: unknown } | undefined>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(c)) {
    const ch = c[k];
    if (!PERSONAL.has(k) || !ch || typeof ch !== 'object') continue;
    const from = typeof ch.from === 'string' ? fn(ch.from, `changes.${k}.from`) : ch.from;
    const to = typeof ch.to === 'string' ? fn(ch.to, `changes.${k}.to`) : ch.to;
    if (from !== ch.from || to !== ch.to) (out ??= { ...c })[k] = { ...ch, from, to };
  }
  return out ?? changes;
}

function withField<D>(data: D, field: string, value: unknown): D {
  const d = data as Record<string, unknown>;
  return value === d[field] ? data : ({ ...d, [field]: value } as D);
}

/** Maps a SCIM resource's personal values (see SCIM_PUBLIC_PATHS). */
export function mapScimPersonalValues(resource: unknown, fn: PersonalValueFn, prefix = 'resource'): unknown {
  return mapStringLeaves(resource, (s, path) => (SCIM_PUBLIC_PATHS.has(path.slice(prefix.length + 1).toLowerCase()) ? s : fn(s, path)), prefix);
}

/**
 * Calls fn on every personal value of an identity event's data (current versions of every type)
 * and returns the data with fn's results in their place: the same object when nothing changed.
 * The types that carry personal data: IdentityHired and AccountProvisioned (attributes),
 * AttributesChanged (from/to of personal attributes), ExternalKeyLinked/Unlinked of a SCIM userName
 * (often an email), ScimResourceReplaced (the client's User document).
 */
export function mapPersonalValues<D>(type: string, data: D, fn: PersonalValueFn): D {
  if (!data || typeof data !== 'object') return data;
  const d = data as Record<string, any>;
  switch (type) {
    case 'IdentityHired':
    case 'AccountProvisioned':
      return withField(data, 'attributes', mapAttributes(d.attributes, 'attributes', fn));
    case 'AttributesChanged':
      return withField(data, 'changes', mapChanges(d.changes, fn));
    case 'ExternalKeyLinked':
    case 'ExternalKeyUnlinked': {
      const key = d.key;
      if (!key || key.kind !== 'scim-username' || typeof key.value !== 'string') return data;
      const value = fn(key.value, 'key.value');
      return value === key.value ? data : withField(data, 'key', { ...key, value });
    }
    case 'ScimResourceReplaced':
      return withField(data, 'resource', mapScimPersonalValues(d.resource, fn));
    default:
      return data;
  }
}

/** Whether an event carries any personal value for which `test` holds. */
export function hasPersonalValue(type: string, data: unknown, test: (value: string) => boolean = () => true): boolean {
  let found = false;
  mapPersonalValues(type, data, (v) => {
    if (!found && test(v)) found = true;
    return v;
  });
  return found;
}

/** Attributes as an erased identity shows them: personal values replaced by the marker, the rest kept. */
export function erasedAttributes(a: Attributes): Attributes {
  const out: Attributes = { ...a };
  for (const k of PERSONAL_ATTRIBUTES) if (out[k] !== undefined) out[k] = ERASED_VALUE;
  return out;
}
