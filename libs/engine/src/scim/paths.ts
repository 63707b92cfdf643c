import { parse as parseFilterText } from 'scim2-parse-filter';
import { assertSafeName, badRequest } from './errors';
import { AttrDef, findAttr, ResourceSchema } from './schemas';

/** A filter as scim2-parse-filter reads it. */
export type FilterAst =
  | { op: 'and' | 'or'; filters: FilterAst[] }
  | { op: 'not'; filter: FilterAst }
  | { op: '[]'; attrPath: string; valFilter: FilterAst }
  | { op: 'pr'; attrPath: string }
  | { op: 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le'; attrPath: string; compValue: string | number | boolean | null };

export const COMPARISONS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

/** Where a path or filter attribute lands in a resource. */
export interface ResolvedAttr {
  /** The extension URN for extension attributes (or a bare extension path). */
  ext?: string;
  /** Undefined only for a path that names a whole extension. */
  attr?: AttrDef;
  sub?: AttrDef;
  /** A common attribute (id, externalId, meta): resolved against COMMON_ATTRIBUTES. */
  common?: boolean;
}

const guardSegments = (text: string, what: 'path' | 'filter') => {
  for (const seg of text.split(/[.:\[\]\s]+/)) if (seg) assertSafeName(seg, what);
};

/**
 * Resolves `[urn:...:]attr[.sub]` against a resource schema, case-insensitively (RFC 7644 3.10).
 * Common attributes resolve to the definitions passed in `common`.
 */
export function resolveAttrPath(schema: ResourceSchema, text: string, common: AttrDef[], what: 'path' | 'filter'): ResolvedAttr {
  guardSegments(text, what);
  const err = (m: string) => badRequest(what === 'path' ? 'invalidPath' : 'invalidFilter', m);
  let rest = text.trim();
  let ext: string | undefined;
  let attrs = schema.attributes;
  if (rest.toLowerCase().startsWith('urn:')) {
    const lower = rest.toLowerCase();
    const candidates = [{ urn: schema.core, attributes: schema.attributes, isExt: false }, ...schema.extensions.map((e) => ({ ...e, isExt: true }))];
    const hit = candidates.find((c) => lower === c.urn.toLowerCase() || lower.startsWith(c.urn.toLowerCase() + ':'));
    if (!hit) throw err(`unknown schema in '${text}'`);
    rest = rest.slice(hit.urn.length + 1);
    attrs = hit.attributes;
    if (hit.isExt) ext = hit.urn;
    if (!rest) {
      if (!hit.isExt) throw err(`'${text}' names a whole resource, not an attribute`);
      return { ext };
    }
  }
  const dot = rest.indexOf('.');
  const name = dot < 0 ? rest : rest.slice(0, dot);
  const subName = dot < 0 ? undefined : rest.slice(dot + 1);
  let attr = findAttr(attrs, name);
  let isCommon = false;
  if (!attr && !ext) {
    attr = findAttr(common, name);
    isCommon = !!attr;
  }
  if (!attr || !/^[A-Za-z$][\w$-]*$/.test(name)) throw err(`unknown attribute '${text}'`);
  if (subName === undefined) return { ext, attr, common: isCommon || undefined };
  if (subName.includes('.')) throw err(`'${text}' is nested too deep`);
  const sub = findAttr(attr.subAttributes, subName);
  if (!sub) throw err(`unknown attribute '${text}'`);
  return { ext, attr, sub, common: isCommon || undefined };
}

/** Index of the `]` closing the `[` at `open`, skipping quoted strings. */
function closingBracket(s: string, open: number): number {
  let quoted = false;
  for (let i = open + 1; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ']') return i;
  }
  return -1;
}

/**
 * Entra ID writes `emails[type eq "work"].value eq "x"`, which is not RFC grammar: it means the
 * same email has type work and value x. Rewritten to `emails[type eq "work" and value eq "x"]`
 * before parsing, so the two conditions stay on one value.
 */
export function rewriteEntraValuePaths(filter: string): string {
  let out = '';
  let i = 0;
  let quoted = false;
  while (i < filter.length) {
    const c = filter[i];
    if (quoted) {
      out += c;
      if (c === '\\') {
        out += filter[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      i++;
      continue;
    }
    if (c === '"') {
      quoted = true;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      const close = closingBracket(filter, i);
      if (close < 0) return filter;
      const inner = filter.slice(i + 1, close);
      const m = /^\.([A-Za-z][\w$-]*)\s+(eq|ne|co|sw|ew|gt|ge|lt|le|pr)\b/i.exec(filter.slice(close + 1));
      if (!m) {
        out += filter.slice(i, close + 1);
        i = close + 1;
        continue;
      }
      // Consume the comparison value (a quoted string or a bare word) after the operator.
      let j = close + 1 + m[0].length;
      let value = '';
      if (m[2].toLowerCase() !== 'pr') {
        while (filter[j] === ' ') j++;
        if (filter[j] === '"') {
          let k = j + 1;
          while (k < filter.length && filter[k] !== '"') k += filter[k] === '\\' ? 2 : 1;
          value = filter.slice(j, k + 1);
          j = k + 1;
        } else {
          const w = /^[^\s()\]]+/.exec(filter.slice(j));
          value = w ? w[0] : '';
          j += value.length;
        }
      }
      out += `[(${inner}) and ${m[1]} ${m[2]}${value ? ' ' + value : ''}]`;
      i = j;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

export function parseFilter(text: string): FilterAst {
  if (text.length > 4096) throw badRequest('invalidFilter', 'filter is longer than 4096 characters');
  try {
    return parseFilterText(rewriteEntraValuePaths(text)) as FilterAst;
  } catch (e) {
    throw badRequest('invalidFilter', `cannot parse filter: ${(e as Error).message}`);
  }
}

/** A PATCH path: attribute, optional value filter, optional sub-attribute after the filter. */
export interface PatchPath extends ResolvedAttr {
  filter?: FilterAst;
  text: string;
}

export function parsePatchPath(schema: ResourceSchema, text: string, common: AttrDef[]): PatchPath {
  if (typeof text !== 'string' || !text.trim()) throw badRequest('invalidPath', 'path must be a non-empty string');
  if (text.length > 1024) throw badRequest('invalidPath', 'path is too long');
  const open = text.indexOf('[');
  if (open < 0) return { ...resolveAttrPath(schema, text, common, 'path'), text };
  const close = closingBracket(text, open);
  if (close < 0) throw badRequest('invalidPath', `unbalanced '[' in '${text}'`);
  const base = resolveAttrPath(schema, text.slice(0, open), common, 'path');
  if (!base.attr || base.sub || !base.attr.multiValued) throw badRequest('invalidPath', `a value filter needs a multi-valued attribute: '${text}'`);
  let filter: FilterAst;
  try {
    filter = parseFilterText(text.slice(open + 1, close)) as FilterAst;
  } catch (e) {
    throw badRequest('invalidPath', `cannot parse the filter in '${text}': ${(e as Error).message}`);
  }
  const after = text.slice(close + 1);
  let sub: AttrDef | undefined;
  if (after) {
    if (!after.startsWith('.')) throw badRequest('invalidPath', `unexpected '${after}' in '${text}'`);
    const name = after.slice(1);
    assertSafeName(name);
    sub = findAttr(base.attr.subAttributes, name);
    if (!sub) throw badRequest('invalidPath', `unknown sub-attribute '${name}' in '${text}'`);
  }
  return { ...base, sub, filter, text };
}
