import { ScimError } from './errors';
import { Doc, isObject } from './normalize';
import { resolveAttrPath } from './paths';
import { AttrDef, COMMON_ATTRIBUTES, ResourceSchema } from './schemas';

/** Splits the `attributes` / `excludedAttributes` parameter (comma-separated paths). */
export function parseAttributeList(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const list = Array.isArray(v) ? v : [v];
  const out: string[] = [];
  for (const x of list) {
    if (typeof x !== 'string') throw new ScimError(400, 'invalidValue', 'attributes must be strings');
    out.push(...x.split(',').map((s) => s.trim()).filter(Boolean));
  }
  if (out.length > 100) throw new ScimError(400, 'invalidValue', 'too many attributes');
  return out.length ? out : undefined;
}

type Selection = Map<string, Set<string> | 'all'>;

/** Selected paths as container -> attribute -> sub-attributes; unknown names are ignored. */
function select(schema: ResourceSchema, paths: string[]): Map<string, Selection> {
  const out = new Map<string, Selection>();
  for (const p of paths) {
    let r;
    try {
      r = resolveAttrPath(schema, p, COMMON_ATTRIBUTES, 'filter');
    } catch (e) {
      if (e instanceof ScimError && e.scimType === 'invalidFilter') continue;
      throw e;
    }
    const key = r.ext ?? '';
    let sel = out.get(key);
    if (!sel) out.set(key, (sel = new Map()));
    if (!r.attr) {
      sel.set('*', 'all');
      continue;
    }
    const cur = sel.get(r.attr.name);
    if (!r.sub) sel.set(r.attr.name, 'all');
    else if (cur !== 'all') sel.set(r.attr.name, new Set([...(cur ?? []), r.sub.name]));
  }
  return out;
}

function pick(value: unknown, subs: Set<string> | 'all'): unknown {
  if (subs === 'all') return value;
  const one = (x: unknown) => (isObject(x) ? Object.fromEntries(Object.entries(x).filter(([k]) => subs.has(k))) : x);
  return Array.isArray(value) ? value.map(one) : one(value);
}

function drop(value: unknown, subs: Set<string>): unknown {
  const one = (x: unknown) => (isObject(x) ? Object.fromEntries(Object.entries(x).filter(([k]) => !subs.has(k))) : x);
  return Array.isArray(value) ? value.map(one) : one(value);
}

const ALWAYS = new Set(['schemas', 'id']);

function defOf(schema: ResourceSchema, container: string, name: string): AttrDef | undefined {
  if (container) return schema.extensions.find((e) => e.urn === container)?.attributes.find((a) => a.name === name);
  return schema.attributes.find((a) => a.name === name) ?? COMMON_ATTRIBUTES.find((a) => a.name === name);
}

/**
 * Applies `attributes` or `excludedAttributes` (RFC 7644 3.4.2.5) to a rendered resource;
 * `schemas`, `id` and attributes returned "always" stay whatever is asked.
 */
export function projectAttributes(schema: ResourceSchema, resource: Doc, attributes?: string[], excluded?: string[]): Doc {
  if (attributes?.length) {
    const sel = select(schema, attributes);
    const out: Doc = {};
    for (const [k, v] of Object.entries(resource)) {
      const ext = schema.extensions.find((e) => e.urn === k);
      if (ext) {
        const s = sel.get(ext.urn);
        if (!s || !isObject(v)) continue;
        if (s.has('*')) out[k] = v;
        else {
          const inner: Doc = {};
          for (const [ik, iv] of Object.entries(v)) {
            const subs = s.get(ik);
            if (subs) inner[ik] = pick(iv, subs);
          }
          if (Object.keys(inner).length) out[k] = inner;
        }
        continue;
      }
      const def = defOf(schema, '', k);
      const subs = sel.get('')?.get(k);
      if (ALWAYS.has(k) || def?.returned === 'always') out[k] = v;
      else if (subs) out[k] = pick(v, subs);
    }
    if (Array.isArray(out.schemas)) out.schemas = (out.schemas as string[]).filter((s) => s === schema.core || out[s] !== undefined);
    return out;
  }
  if (excluded?.length) {
    const sel = select(schema, excluded);
    const out: Doc = { ...resource };
    for (const [container, s] of sel) {
      if (container) {
        if (s.has('*')) {
          delete out[container];
          continue;
        }
        if (!isObject(out[container])) continue;
        const inner: Doc = { ...(out[container] as Doc) };
        for (const [name, subs] of s) {
          if (subs === 'all') delete inner[name];
          else if (inner[name] !== undefined) inner[name] = drop(inner[name], subs);
        }
        if (Object.keys(inner).length) out[container] = inner;
        else delete out[container];
        continue;
      }
      for (const [name, subs] of s) {
        const def = defOf(schema, '', name);
        if (ALWAYS.has(name) || def?.returned === 'always') continue;
        if (subs === 'all') delete out[name];
        else if (out[name] !== undefined) out[name] = drop(out[name], subs);
      }
    }
    if (Array.isArray(out.schemas)) out.schemas = (out.schemas as string[]).filter((s) => s === schema.core || out[s] !== undefined);
    return out;
  }
  return resource;
}
