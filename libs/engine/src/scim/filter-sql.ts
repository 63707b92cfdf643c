import type { Dialect } from '@idlc/sql';
import { badRequest, ScimError } from './errors';
import { COMPARISONS, FilterAst, resolveAttrPath } from './paths';
import { AttrDef, AttrType, COMMON_ATTRIBUTES, ResourceSchema } from './schemas';
import { attrKey } from './values';

/** A resource type's read model, as the translator sees it. */
export interface SqlModel {
  schema: ResourceSchema;
  /** Alias of the main table in the query. */
  alias: string;
  valuesTable: string;
  /** Attributes kept in columns of the main table (keys: lowercased paths like `username`, `meta.created`). */
  columns: Record<string, { col: string; type: AttrType; caseExact: boolean; lowered?: boolean }>;
}

export interface SqlFragment {
  sql: string;
  params: unknown[];
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);
const globEscape = (s: string) => s.replace(/[*?[]/g, (c) => `[${c}]`);

interface Leaf {
  /** SQL expression for the text (or number) compared. */
  text: string;
  num: string;
  type: AttrType;
  caseExact: boolean;
  /** The text column already holds lowercased values. */
  lowered?: boolean;
}

/** Parses the comparison value for a type; a value the attribute cannot hold is an invalid filter. */
function operand(type: AttrType, op: string, v: unknown, path: string): { kind: 'num' | 'text'; value: number | string } {
  if (type === 'boolean') {
    if (op !== 'eq' && op !== 'ne') throw badRequest('invalidFilter', `${op} does not apply to boolean ${path}`);
    const b = typeof v === 'string' ? (/^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : null) : v;
    if (typeof b !== 'boolean') throw badRequest('invalidFilter', `${path} is a boolean`);
    return { kind: 'num', value: b ? 1 : 0 };
  }
  if (type === 'integer' || type === 'decimal') {
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || op === 'co' || op === 'sw' || op === 'ew') throw badRequest('invalidFilter', `${path} is a number`);
    return { kind: 'num', value: n };
  }
  if (type === 'dateTime') {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (Number.isNaN(t) || op === 'co' || op === 'sw' || op === 'ew') throw badRequest('invalidFilter', `${path} is a dateTime: compare it with an xsd:dateTime string`);
    return { kind: 'num', value: t };
  }
  if (type === 'binary' && op !== 'eq' && op !== 'ne') throw badRequest('invalidFilter', `${op} does not apply to binary ${path}`);
  if (typeof v === 'object' && v !== null) throw badRequest('invalidFilter', `bad value for ${path}`);
  return { kind: 'text', value: String(v) };
}

export class FilterTranslator {
  private nodes = 0;
  private subq = 0;

  constructor(
    private readonly m: SqlModel,
    private readonly dialect: Dialect,
    /** For a search across resource types: an attribute this type lacks matches nothing instead of failing. */
    private readonly unknownMatchesNothing = false,
  ) {}

  private leaf(fn: () => SqlFragment): SqlFragment {
    if (!this.unknownMatchesNothing) return fn();
    try {
      return fn();
    } catch (e) {
      if (e instanceof ScimError && /^unknown (attribute|schema)/.test(e.message)) return { sql: '(1 = 0)', params: [] };
      throw e;
    }
  }

  /** A WHERE clause fragment selecting the main table's rows that match the filter. */
  translate(f: FilterAst): SqlFragment {
    if (++this.nodes > 200) throw badRequest('invalidFilter', 'filter has too many terms');
    switch (f.op) {
      case 'and':
      case 'or': {
        const parts = f.filters.map((x) => this.translate(x));
        return { sql: `(${parts.map((p) => p.sql).join(f.op === 'and' ? ' AND ' : ' OR ')})`, params: parts.flatMap((p) => p.params) };
      }
      case 'not': {
        const p = this.translate(f.filter);
        return { sql: `(NOT ${p.sql})`, params: p.params };
      }
      case '[]':
        return this.leaf(() => this.valuePath(f.attrPath, f.valFilter));
    }
    return this.leaf(() => this.attrExpr(f));
  }

  private attrExpr(f: Extract<FilterAst, { op: 'pr' | 'eq' }> | Extract<FilterAst, { compValue: unknown }>): SqlFragment {
    if (f.op !== 'pr' && !COMPARISONS.has(f.op)) throw badRequest('invalidFilter', `unknown operator ${f.op}`);
    const r = resolveAttrPath(this.m.schema, f.attrPath, COMMON_ATTRIBUTES, 'filter');
    if (!r.attr) throw badRequest('invalidFilter', `${f.attrPath} names a schema, not an attribute`);
    const a = this.m.alias;
    const path = (r.common ? r.attr.name + (r.sub ? '.' + r.sub.name : '') : r.ext ? '' : r.attr.name + (r.sub ? '.' + r.sub.name : '')).toLowerCase();
    if (r.common && r.attr.name === 'meta' && r.sub?.name === 'resourceType') {
      const matches = f.op === 'pr' || (f.op === 'eq' && String(f.compValue).toLowerCase() === this.m.schema.type.toLowerCase());
      return { sql: matches ? '(1 = 1)' : '(1 = 0)', params: [] };
    }
    const col = this.m.columns[path];
    if (col) {
      const leaf: Leaf = { text: `${a}.${col.col}`, num: `${a}.${col.col}`, type: col.type, caseExact: col.caseExact, lowered: col.lowered };
      if (f.op === 'pr') return { sql: `(${a}.${col.col} IS NOT NULL)`, params: [] };
      return this.compare(leaf, f.op, f.compValue, f.attrPath, true);
    }
    if (r.common) throw badRequest('invalidFilter', `filtering on ${f.attrPath} is not supported`);
    let def: AttrDef = r.sub ?? r.attr;
    let sub = r.sub ? r.sub.name.toLowerCase() : '';
    if (!r.sub && r.attr.type === 'complex') {
      if (f.op === 'pr') return this.inValues(`v.attr = ?`, [attrKey(r.attr.name, r.ext)]);
      // `emails co "x"` means emails.value (RFC 7644 3.4.2.2, multi-valued complex attributes).
      const value = r.attr.subAttributes?.find((s) => s.name === 'value');
      if (!r.attr.multiValued || !value) throw badRequest('invalidFilter', `${f.attrPath} is complex: name a sub-attribute`);
      def = value;
      sub = 'value';
    }
    const key = attrKey(r.attr.name, r.ext);
    if (f.op === 'pr') return this.inValues('v.attr = ? AND v.sub = ?', [key, sub]);
    if (f.compValue === null) {
      // `eq null` asks for an unassigned attribute, `ne null` for an assigned one.
      const pr = this.inValues('v.attr = ? AND v.sub = ?', [key, sub]);
      return f.op === 'ne' ? pr : { sql: `(NOT ${pr.sql})`, params: pr.params };
    }
    const negate = f.op === 'ne';
    const c = this.compare({ text: '', num: 'v.v_num', type: def.type, caseExact: def.caseExact }, negate ? 'eq' : f.op, f.compValue, f.attrPath, false, 'v');
    const inner = this.inValues(`v.attr = ? AND v.sub = ? AND ${c.sql}`, [key, sub, ...c.params]);
    return negate ? { sql: `(NOT ${inner.sql})`, params: inner.params } : inner;
  }

  private inValues(where: string, params: unknown[]): SqlFragment {
    return { sql: `(${this.m.alias}.id IN (SELECT v.id FROM ${this.m.valuesTable} v WHERE ${where}))`, params };
  }

  /** A comparison on one leaf; `alias` names the values-table alias when comparing a values row. */
  private compare(leaf: Leaf, op: string, value: unknown, path: string, column: boolean, alias?: string): SqlFragment {
    const o = operand(leaf.type, op, value, path);
    const pg = this.dialect === 'postgres';
    if (o.kind === 'num') {
      const sqlOp = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' }[op as 'eq'];
      const expr = column ? leaf.num : `${alias}.v_num`;
      if (op === 'ne') return { sql: `(${expr} IS NULL OR ${expr} <> ?)`, params: [o.value] };
      return { sql: `(${expr} ${sqlOp} ?)`, params: [o.value] };
    }
    const exact = leaf.caseExact;
    const expr = column ? leaf.text : exact ? `${alias}.v_text` : `${alias}.v_lc`;
    let v = o.value as string;
    if (!exact) v = v.toLowerCase();
    const collate = pg ? ' COLLATE "C"' : '';
    switch (op) {
      case 'eq':
        return { sql: `(${expr} = ?)`, params: [v] };
      case 'ne':
        return { sql: `(${expr} IS NULL OR ${expr} <> ?)`, params: [v] };
      case 'co':
      case 'sw':
      case 'ew': {
        if (exact && !pg) {
          const g = globEscape(v);
          return { sql: `(${expr} GLOB ?)`, params: [op === 'co' ? `*${g}*` : op === 'sw' ? `${g}*` : `*${g}`] };
        }
        const l = likeEscape(v);
        return { sql: `(${expr} LIKE ? ESCAPE '\\')`, params: [op === 'co' ? `%${l}%` : op === 'sw' ? `${l}%` : `%${l}`] };
      }
      default: {
        const sqlOp = { gt: '>', ge: '>=', lt: '<', le: '<=' }[op as 'gt'];
        return { sql: `(${expr}${collate} ${sqlOp} ?)`, params: [v] };
      }
    }
  }

  /** `emails[type eq "work" and value co "@x"]`: every condition holds on the same value. */
  private valuePath(attrPath: string, inner: FilterAst): SqlFragment {
    const r = resolveAttrPath(this.m.schema, attrPath, COMMON_ATTRIBUTES, 'filter');
    if (!r.attr || r.sub || r.common || !r.attr.multiValued) throw badRequest('invalidFilter', `${attrPath}[...] needs a multi-valued attribute`);
    const key = attrKey(r.attr.name, r.ext);
    const e = `e${++this.subq}`;
    const cond = this.element(r.attr, inner, e);
    return { sql: `(${this.m.alias}.id IN (SELECT ${e}.id FROM ${this.m.valuesTable} ${e} WHERE ${e}.attr = ? AND ${cond.sql}))`, params: [key, ...cond.params] };
  }

  private element(parent: AttrDef, f: FilterAst, e: string): SqlFragment {
    if (++this.nodes > 200) throw badRequest('invalidFilter', 'filter has too many terms');
    switch (f.op) {
      case 'and':
      case 'or': {
        const parts = f.filters.map((x) => this.element(parent, x, e));
        return { sql: `(${parts.map((p) => p.sql).join(f.op === 'and' ? ' AND ' : ' OR ')})`, params: parts.flatMap((p) => p.params) };
      }
      case 'not': {
        const p = this.element(parent, f.filter, e);
        return { sql: `(NOT ${p.sql})`, params: p.params };
      }
      case '[]':
        throw badRequest('invalidFilter', 'value filters do not nest');
    }
    const name = f.attrPath.slice(f.attrPath.lastIndexOf('.') + 1).toLowerCase();
    const def = parent.subAttributes ? parent.subAttributes.find((s) => s.name.toLowerCase() === name) : name === 'value' ? parent : undefined;
    if (!def) throw badRequest('invalidFilter', `unknown sub-attribute ${f.attrPath} of ${parent.name}`);
    const sub = parent.subAttributes ? def.name.toLowerCase() : '';
    const w = `w${++this.subq}`;
    const exists = (cond: string, params: unknown[]) => ({
      sql: `EXISTS (SELECT 1 FROM ${this.m.valuesTable} ${w} WHERE ${w}.id = ${e}.id AND ${w}.attr = ${e}.attr AND ${w}.idx = ${e}.idx AND ${w}.sub = ?${cond})`,
      params: [sub, ...params],
    });
    if (f.op === 'pr') return exists('', []);
    if (!COMPARISONS.has(f.op)) throw badRequest('invalidFilter', `unknown operator ${f.op}`);
    if (f.compValue === null) {
      const pr = exists('', []);
      return f.op === 'ne' ? pr : { sql: `(NOT ${pr.sql})`, params: pr.params };
    }
    const negate = f.op === 'ne';
    const c = this.compare({ text: '', num: '', type: def.type, caseExact: def.caseExact }, negate ? 'eq' : f.op, f.compValue, f.attrPath, false, w);
    const x = exists(` AND ${c.sql}`, c.params);
    return negate ? { sql: `(NOT ${x.sql})`, params: x.params } : x;
  }

  /** ORDER BY expression for sortBy (RFC 7644 3.4.2.3): multi-valued attributes sort by their primary value. */
  sortExpr(sortBy: string): SqlFragment {
    const r = resolveAttrPath(this.m.schema, sortBy, COMMON_ATTRIBUTES, 'filter');
    if (!r.attr) throw badRequest('invalidValue', `cannot sort by ${sortBy}`);
    const path = (r.attr.name + (r.sub ? '.' + r.sub.name : '')).toLowerCase();
    const col = !r.ext ? this.m.columns[path] : undefined;
    if (col) return { sql: `${this.m.alias}.${col.col}`, params: [] };
    if (r.common) throw badRequest('invalidValue', `cannot sort by ${sortBy}`);
    let def = r.sub ?? r.attr;
    let sub = r.sub ? r.sub.name.toLowerCase() : '';
    if (!r.sub && r.attr.type === 'complex') {
      const value = r.attr.subAttributes?.find((s) => s.name === 'value');
      if (!value) throw badRequest('invalidValue', `${sortBy} is complex: name a sub-attribute`);
      def = value;
      sub = 'value';
    }
    const field = ['boolean', 'integer', 'decimal', 'dateTime'].includes(def.type) ? 'v_num' : def.caseExact ? 'v_text' : 'v_lc';
    return {
      sql: `(SELECT s.${field} FROM ${this.m.valuesTable} s WHERE s.id = ${this.m.alias}.id AND s.attr = ? AND s.sub = ? ORDER BY s.is_primary DESC, s.idx LIMIT 1)`,
      params: [attrKey(r.attr.name, r.ext), sub],
    };
  }
}
