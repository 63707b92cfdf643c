import { Doc, isObject } from './normalize';
import { AttrDef, ResourceSchema } from './schemas';

/**
 * One indexed row per leaf value of a SCIM document, so any attribute (including sub-attributes of
 * multi-valued ones, correlated by `idx`) can be filtered and sorted with an indexed SQL query.
 */
export interface ValueRow {
  attr: string;
  idx: number;
  sub: string;
  text: string | null;
  lc: string | null;
  num: number | null;
  primary: boolean;
}

/** The key an attribute is stored under: its lowercased name, URN-qualified for extensions. */
export const attrKey = (name: string, ext?: string): string => (ext ? `${ext}:${name}` : name).toLowerCase();

function leaf(def: AttrDef, v: unknown): Pick<ValueRow, 'text' | 'lc' | 'num'> | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return { text: String(v), lc: String(v), num: v ? 1 : 0 };
  if (typeof v === 'number') return { text: String(v), lc: String(v), num: v };
  if (typeof v !== 'string') return null;
  const num = def.type === 'dateTime' ? Date.parse(v) : null;
  return { text: v, lc: v.toLowerCase(), num: Number.isNaN(num) ? null : num };
}

function rowsFor(out: ValueRow[], def: AttrDef, v: unknown, key: string): void {
  if (v === undefined || v === null || def.mutability === 'writeOnly') return;
  const elements = def.multiValued && Array.isArray(v) ? v : [v];
  elements.forEach((el, idx) => {
    const primary = isObject(el) && el.primary === true;
    if (def.type === 'complex') {
      if (!isObject(el)) return;
      for (const s of def.subAttributes ?? []) {
        const l = leaf(s, el[s.name]);
        if (l) out.push({ attr: key, idx, sub: s.name.toLowerCase(), ...l, primary });
      }
    } else {
      const l = leaf(def, el);
      if (l) out.push({ attr: key, idx, sub: '', ...l, primary });
    }
  });
}

export function valueRows(schema: ResourceSchema, doc: Doc, skip: string[] = []): ValueRow[] {
  const out: ValueRow[] = [];
  for (const def of schema.attributes) if (!skip.includes(def.name)) rowsFor(out, def, doc[def.name], attrKey(def.name));
  for (const ext of schema.extensions) {
    const e = doc[ext.urn];
    if (!isObject(e)) continue;
    for (const def of ext.attributes) rowsFor(out, def, e[def.name], attrKey(def.name, ext.urn));
  }
  return out;
}
