import { assertSafeName, badRequest } from './errors';
import { AttrDef, COMMON_ATTRIBUTES, findAttr, ResourceSchema } from './schemas';

/** A SCIM resource in canonical form: schema attribute names, coerced values, no empty values. */
export type Doc = Record<string, unknown>;

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A fresh object that cannot be polluted through its prototype. */
const bag = (): Record<string, unknown> => ({});

export interface NormalizeOptions {
  /** Drop read-only (and, for stored documents, write-only) attributes instead of keeping them. */
  dropReadOnly: boolean;
}

function coerceBoolean(def: AttrDef, v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  // Entra ID sends booleans as strings ("True", "False").
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  throw badRequest('invalidValue', `${where} must be a boolean`);
}

function normalizeSimple(def: AttrDef, v: unknown, where: string): unknown {
  switch (def.type) {
    case 'boolean':
      return coerceBoolean(def, v, where);
    case 'integer': {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw badRequest('invalidValue', `${where} must be an integer`);
      return n;
    }
    case 'decimal': {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw badRequest('invalidValue', `${where} must be a number`);
      return n;
    }
    case 'dateTime':
      if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw badRequest('invalidValue', `${where} must be an xsd:dateTime`);
      return v;
    case 'complex':
      throw new Error('unreachable');
    default:
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      if (typeof v !== 'string') throw badRequest('invalidValue', `${where} must be a string`);
      if (v.length > 4096) throw badRequest('invalidValue', `${where} is longer than 4096 characters`);
      return v === '' ? undefined : v;
  }
}

function normalizeComplex(def: AttrDef, v: unknown, where: string, o: NormalizeOptions): Doc | undefined {
  if (!isObject(v)) throw badRequest('invalidValue', `${where} must be an object`);
  const out = bag();
  for (const [k, raw] of Object.entries(v)) {
    assertSafeName(k, 'path');
    const sub = findAttr(def.subAttributes, k);
    if (!sub) continue; // unknown sub-attributes are ignored (RFC 7644 3.3 robustness)
    if (o.dropReadOnly && sub.mutability === 'readOnly') continue;
    const n = normalizeValue(sub, raw, `${where}.${sub.name}`, o);
    if (n !== undefined) out[sub.name] = n;
  }
  return Object.keys(out).length ? out : undefined;
}

/** Normalizes one attribute value; undefined means unassigned (null, "", [] and {} all are). */
export function normalizeValue(def: AttrDef, v: unknown, where: string, o: NormalizeOptions): unknown {
  if (v === null || v === undefined) return undefined;
  const single = (x: unknown) => (def.type === 'complex' ? normalizeComplex(def, x, where, o) : normalizeSimple(def, x, where));
  if (!def.multiValued) {
    if (Array.isArray(v)) {
      if (v.length === 0) return undefined;
      if (v.length > 1) throw badRequest('invalidValue', `${where} is single-valued`);
      return single(v[0]);
    }
    return single(v);
  }
  const list = (Array.isArray(v) ? v : [v]).map((x, i) => single(x)).filter((x) => x !== undefined);
  if (list.length > 1000) throw badRequest('tooMany', `${where} has more than 1000 values`);
  if (!list.length) return undefined;
  if (def.type === 'complex' && list.filter((x) => (x as Doc).primary === true).length > 1) {
    throw badRequest('invalidValue', `${where}: 'primary' may be true for one value at most`);
  }
  return list;
}

/**
 * A client's resource (POST/PUT body, or the document a PATCH produced) in canonical form.
 * Read-only attributes (id, meta, groups) are ignored as RFC 7644 3.3 says; unknown ones too.
 * The password is returned apart and never kept in the document.
 */
export function normalizeResource(schema: ResourceSchema, body: unknown, o: NormalizeOptions = { dropReadOnly: true }): { doc: Doc; password?: string } {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'the request body must be a JSON object');
  const doc = bag();
  let password: string | undefined;
  const extUrns = new Map(schema.extensions.map((e) => [e.urn.toLowerCase(), e]));
  if (body.schemas !== undefined) {
    if (!Array.isArray(body.schemas) || body.schemas.some((s) => typeof s !== 'string')) throw badRequest('invalidValue', 'schemas must be an array of URIs');
    const known = [schema.core.toLowerCase(), ...extUrns.keys()];
    const unknown = (body.schemas as string[]).filter((s) => !known.includes(s.toLowerCase()));
    if (unknown.length) throw badRequest('invalidValue', `unsupported schemas: ${unknown.join(', ')}`);
  }
  for (const [k, v] of Object.entries(body)) {
    assertSafeName(k, 'path');
    const lk = k.toLowerCase();
    if (lk === 'schemas') continue;
    const ext = extUrns.get(lk);
    if (ext) {
      if (v === null) continue;
      const sub = normalizeComplex({ name: ext.urn, type: 'complex', subAttributes: ext.attributes } as AttrDef, v, ext.urn, o);
      if (sub) doc[ext.urn] = sub;
      continue;
    }
    const common = findAttr(COMMON_ATTRIBUTES, k);
    if (common) {
      if (common.name === 'externalId') {
        const n = normalizeValue(common, v, 'externalId', o);
        if (n !== undefined) doc.externalId = n;
      }
      continue; // id and meta are read-only
    }
    const def = findAttr(schema.attributes, k);
    if (!def) continue;
    if (def.mutability === 'readOnly' && o.dropReadOnly) continue;
    if (def.mutability === 'writeOnly') {
      if (v !== null && v !== undefined) {
        const p = normalizeValue(def, v, def.name, o);
        if (typeof p === 'string') password = p;
      }
      continue;
    }
    const n = normalizeValue(def, v, def.name, o);
    if (n !== undefined) doc[def.name] = n;
  }
  for (const def of schema.attributes) {
    if (def.required && doc[def.name] === undefined) throw badRequest('invalidValue', `${def.name} is required`);
  }
  doc.schemas = [schema.core, ...schema.extensions.filter((e) => doc[e.urn] !== undefined).map((e) => e.urn)];
  return { doc, password };
}
