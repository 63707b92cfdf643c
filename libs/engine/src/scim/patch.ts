import { badRequest, ScimError } from './errors';
import { Doc, isObject, normalizeValue } from './normalize';
import { COMPARISONS, FilterAst, parsePatchPath, PatchPath } from './paths';
import { AttrDef, COMMON_ATTRIBUTES, findAttr, ResourceSchema } from './schemas';

export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
const lenient = { dropReadOnly: false };

/** Validates a PatchOp body, accepting the known client spellings (Entra's `Replace`). */
export function parsePatchBody(body: unknown, patchSchema: string): PatchOperation[] {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'the request body must be a JSON object');
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === patchSchema.toLowerCase())) {
    throw badRequest('invalidSyntax', `schemas must contain ${patchSchema}`);
  }
  const ops = body.Operations ?? body.operations;
  // Entra ID's validator sends an empty Operations list: that changes nothing.
  if (ops === undefined) return [];
  if (!Array.isArray(ops)) throw badRequest('invalidSyntax', 'Operations must be an array');
  if (ops.length > 1000) throw badRequest('tooMany', 'at most 1000 operations per request');
  return ops.map((o, i) => {
    if (!isObject(o)) throw badRequest('invalidSyntax', `Operations[${i}] must be an object`);
    const op = typeof o.op === 'string' ? o.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw badRequest('invalidSyntax', `Operations[${i}].op must be add, replace or remove`);
    if (o.path !== undefined && o.path !== null && typeof o.path !== 'string') throw badRequest('invalidPath', `Operations[${i}].path must be a string`);
    const path = typeof o.path === 'string' && o.path.trim() !== '' ? o.path.trim() : undefined;
    if (op !== 'remove' && !('value' in o)) throw badRequest('invalidValue', `Operations[${i}] needs a value`);
    return { op, path, value: o.value };
  });
}

function compare(def: AttrDef | undefined, actual: unknown, op: string, expected: unknown): boolean {
  if (actual === undefined || actual === null) return op === 'ne';
  if (def?.type === 'boolean' || typeof actual === 'boolean') {
    const e = typeof expected === 'string' ? expected.toLowerCase() === 'true' : expected;
    if (op === 'eq') return actual === e;
    if (op === 'ne') return actual !== e;
    throw badRequest('invalidFilter', `${op} does not apply to a boolean`);
  }
  if (typeof actual === 'number') {
    const e = Number(expected);
    switch (op) {
      case 'eq': return actual === e;
      case 'ne': return actual !== e;
      case 'gt': return actual > e;
      case 'ge': return actual >= e;
      case 'lt': return actual < e;
      case 'le': return actual <= e;
      default: throw badRequest('invalidFilter', `${op} does not apply to a number`);
    }
  }
  const exact = def?.caseExact ?? false;
  let a = String(actual);
  let e = expected === null ? '' : String(expected);
  if (!exact) {
    a = a.toLowerCase();
    e = e.toLowerCase();
  }
  switch (op) {
    case 'eq': return a === e;
    case 'ne': return a !== e;
    case 'co': return a.includes(e);
    case 'sw': return a.startsWith(e);
    case 'ew': return a.endsWith(e);
    case 'gt': return a > e;
    case 'ge': return a >= e;
    case 'lt': return a < e;
    case 'le': return a <= e;
  }
  return false;
}

/** Evaluates a value filter (inside `[...]`) against one value of a multi-valued attribute. */
export function matchesValue(el: unknown, f: FilterAst, parent: AttrDef): boolean {
  switch (f.op) {
    case 'and':
      return f.filters.every((x) => matchesValue(el, x, parent));
    case 'or':
      return f.filters.some((x) => matchesValue(el, x, parent));
    case 'not':
      return !matchesValue(el, f.filter, parent);
    case '[]':
      throw badRequest('invalidFilter', 'value filters do not nest');
  }
  const name = f.attrPath.includes('.') ? f.attrPath.slice(f.attrPath.lastIndexOf('.') + 1) : f.attrPath;
  // A simple multi-valued attribute (no sub-attributes) is filtered on `value`, the element itself.
  const sub = parent.subAttributes ? findAttr(parent.subAttributes, name) : name.toLowerCase() === 'value' ? parent : undefined;
  if (!sub) throw badRequest('invalidFilter', `unknown sub-attribute '${f.attrPath}' of ${parent.name}`);
  const actual = parent.subAttributes ? (isObject(el) ? el[sub.name] : undefined) : el;
  if (f.op === 'pr') return actual !== undefined && actual !== null && actual !== '';
  if (!COMPARISONS.has(f.op)) throw badRequest('invalidFilter', `unknown operator ${f.op}`);
  return compare(sub, actual, f.op, f.compValue);
}

/** The equality conditions of a filter like `type eq "work"` (or several joined by and). */
function equalities(f: FilterAst): Record<string, unknown> | null {
  if (f.op === 'eq') return { [f.attrPath]: f.compValue };
  if (f.op === 'and') {
    const out: Record<string, unknown> = {};
    for (const x of f.filters) {
      const e = equalities(x);
      if (!e) return null;
      Object.assign(out, e);
    }
    return out;
  }
  return null;
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Where an attribute lives in the document: the core level or an extension object. */
function container(doc: Doc, p: { ext?: string }, create: boolean): Doc | undefined {
  if (!p.ext) return doc;
  let c = doc[p.ext];
  if (!isObject(c)) {
    if (!create) return undefined;
    c = {};
    doc[p.ext] = c;
  }
  return c as Doc;
}

function cleanup(doc: Doc, p: { ext?: string }): void {
  if (p.ext && isObject(doc[p.ext]) && Object.keys(doc[p.ext] as Doc).length === 0) delete doc[p.ext];
}

/** Merges sub-attributes into a complex value (add and replace on a complex attribute). */
function mergeComplex(target: unknown, value: Doc): Doc {
  return { ...(isObject(target) ? target : {}), ...value };
}

function clearPrimaries(list: unknown[], except: Set<unknown>): void {
  for (const el of list) if (isObject(el) && !except.has(el) && el.primary === true) delete el.primary;
}

function applyToAttr(doc: Doc, op: PatchOperation['op'], p: PatchPath, value: unknown): void {
  const attr = p.attr!;
  if (attr.mutability === 'readOnly' || (p.sub && p.sub.mutability === 'readOnly')) throw new ScimError(400, 'mutability', `${p.text} is read-only`);
  const where = p.text;
  const c = container(doc, p, op !== 'remove');
  if (!c) return;
  const current = c[attr.name];

  if (!attr.multiValued) {
    if (p.sub) {
      if (op === 'remove') {
        if (isObject(current)) {
          delete current[p.sub.name];
          if (!Object.keys(current).length) delete c[attr.name];
        }
      } else {
        const v = normalizeValue(p.sub, value, where, lenient);
        const next = mergeComplex(current, {});
        if (v === undefined) delete next[p.sub.name];
        else next[p.sub.name] = v;
        if (Object.keys(next).length) c[attr.name] = next;
        else delete c[attr.name];
      }
    } else if (op === 'remove') {
      delete c[attr.name];
    } else {
      const v = normalizeValue(attr, value, where, lenient);
      if (v === undefined) delete c[attr.name];
      // add and replace both merge the sub-attributes of a complex value (RFC 7644 3.5.2.1, 3.5.2.3).
      else c[attr.name] = attr.type === 'complex' ? mergeComplex(current, v as Doc) : v;
    }
    cleanup(doc, p);
    return;
  }

  const list: unknown[] = Array.isArray(current) ? current : [];
  if (p.filter) {
    const matched = list.filter((el) => matchesValue(el, p.filter!, attr));
    if (op === 'remove') {
      const rest = p.sub ? list : list.filter((el) => !matched.includes(el));
      if (p.sub) for (const el of matched) if (isObject(el)) delete el[p.sub.name];
      const kept = rest.filter((el) => !isObject(el) || Object.keys(el).length > 0);
      if (kept.length) c[attr.name] = kept;
      else delete c[attr.name];
      cleanup(doc, p);
      return;
    }
    if (!matched.length) {
      // Entra ID sets `emails[type eq "work"].value` on users that have no work email yet.
      const eq = equalities(p.filter);
      if (!eq || !p.sub) throw badRequest('noTarget', `no value of ${attr.name} matches ${p.text}`);
      const created: Doc = {};
      for (const [k, v] of Object.entries(eq)) {
        const sub = findAttr(attr.subAttributes, k);
        if (!sub) throw badRequest('invalidPath', `unknown sub-attribute '${k}'`);
        const n = normalizeValue(sub, v, `${where}`, lenient);
        if (n !== undefined) created[sub.name] = n;
      }
      const v = normalizeValue(p.sub, value, where, lenient);
      if (v === undefined) return;
      created[p.sub.name] = v;
      c[attr.name] = [...list, created];
      cleanup(doc, p);
      return;
    }
    if (p.sub) {
      const v = normalizeValue(p.sub, value, where, lenient);
      for (const el of matched) {
        if (!isObject(el)) continue;
        if (v === undefined) delete el[p.sub.name];
        else el[p.sub.name] = v;
      }
      if (p.sub.name === 'primary' && v === true) clearPrimaries(list, new Set(matched.slice(0, 1)));
    } else {
      const v = normalizeValue({ ...attr, multiValued: false }, value, where, lenient);
      const next = list.map((el) => (matched.includes(el) ? (v === undefined ? undefined : attr.type === 'complex' ? mergeComplex(el, v as Doc) : v) : el));
      c[attr.name] = next.filter((x) => x !== undefined);
    }
    cleanup(doc, p);
    return;
  }

  if (p.sub) {
    // `emails.type`: applies to every value of the attribute.
    for (const el of list) {
      if (!isObject(el)) continue;
      if (op === 'remove') delete el[p.sub.name];
      else {
        const v = normalizeValue(p.sub, value, where, lenient);
        if (v === undefined) delete el[p.sub.name];
        else el[p.sub.name] = v;
      }
    }
    cleanup(doc, p);
    return;
  }

  if (op === 'remove') {
    if (value !== undefined && value !== null) {
      // Entra ID removes group members by value: {"op":"Remove","path":"members","value":[{"value":"id"}]}.
      const gone = (Array.isArray(value) ? value : [value]).map((x) => (isObject(x) && 'value' in x ? { by: 'value', v: x.value } : { by: 'whole', v: x }));
      const kept = list.filter(
        (el) => !gone.some((g) => (g.by === 'value' ? isObject(el) && String(el.value) === String(g.v) : sameValue(el, g.v) || (!isObject(el) && String(el) === String(g.v)))),
      );
      if (kept.length) c[attr.name] = kept;
      else delete c[attr.name];
    } else delete c[attr.name];
    cleanup(doc, p);
    return;
  }
  const v = normalizeValue(attr, value, where, lenient) as unknown[] | undefined;
  if (op === 'replace') {
    if (v === undefined) delete c[attr.name];
    else c[attr.name] = v;
  } else if (v !== undefined) {
    const added = v.filter((x) => !list.some((el) => sameValue(el, x) || (isObject(el) && isObject(x) && el.value !== undefined && el.value === x.value && attr.name === 'members')));
    const next = [...list, ...added];
    if (added.some((x) => isObject(x) && x.primary === true)) clearPrimaries(next, new Set(added));
    c[attr.name] = next;
  }
  cleanup(doc, p);
}

/**
 * Applies PATCH operations to a copy of a canonical document. Path-less add/replace take each key
 * of the value as a path, so Entra's dotted keys (`name.givenName`) and URN-qualified keys work.
 */
export function applyPatch(schema: ResourceSchema, original: Doc, ops: PatchOperation[]): Doc {
  const doc = clone(original);
  for (const o of ops) {
    if (!o.path) {
      if (o.op === 'remove') throw badRequest('noTarget', 'remove needs a path');
      if (!isObject(o.value)) throw badRequest('invalidValue', `${o.op} without a path needs an object value`);
      for (const [k, v] of Object.entries(o.value)) {
        const lk = k.toLowerCase();
        // Read-only attributes in a path-less value are ignored (Okta sends id with a rename).
        if (lk === 'schemas' || lk === 'id' || lk === 'meta') continue;
        const p = parsePatchPath(schema, k, COMMON_ATTRIBUTES);
        if (p.attr?.mutability === 'readOnly') continue;
        applyPath(doc, o.op, p, v, schema);
      }
      continue;
    }
    const p = parsePatchPath(schema, o.path, COMMON_ATTRIBUTES);
    applyPath(doc, o.op, p, o.value, schema);
  }
  return doc;
}

function applyPath(doc: Doc, op: PatchOperation['op'], p: PatchPath, value: unknown, schema: ResourceSchema): void {
  if (p.common) {
    const name = p.attr!.name;
    if (name !== 'externalId' || p.sub) throw new ScimError(400, 'mutability', `${p.text} is read-only`);
    if (op === 'remove') delete doc.externalId;
    else {
      const v = normalizeValue(p.attr!, value, 'externalId', lenient);
      if (v === undefined) delete doc.externalId;
      else doc.externalId = v;
    }
    return;
  }
  if (!p.attr) {
    // A whole extension: add/replace merge its attributes, remove drops it.
    const ext = schema.extensions.find((e) => e.urn === p.ext)!;
    if (op === 'remove') {
      delete doc[ext.urn];
      return;
    }
    if (!isObject(value)) throw badRequest('invalidValue', `${ext.urn} needs an object value`);
    for (const [k, v] of Object.entries(value)) {
      // A client serialising the extension as a resource adds schemas (and may add id/meta): not attributes.
      if (['schemas', 'id', 'meta'].includes(k.toLowerCase())) continue;
      const sub = parsePatchPath(schema, `${ext.urn}:${k}`, COMMON_ATTRIBUTES);
      if (sub.attr?.mutability === 'readOnly') continue;
      applyToAttr(doc, op, sub, v);
    }
    return;
  }
  applyToAttr(doc, op, p, value);
}
