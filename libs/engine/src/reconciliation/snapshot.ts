import { createHash } from 'node:crypto';
import { ATTRIBUTE_NAMES, AttributeName } from '@idlc/domain';
import { CsvSyntaxError, parseCsv } from './csv';

/** What HR says about a person's employment, when the snapshot carries it. */
export const HR_STATUSES = ['active', 'pending', 'leave', 'terminated'] as const;
export type HrStatus = (typeof HR_STATUSES)[number];

export interface HrRecord {
  employeeId: string;
  /** Where the record is in the file: "line 12" (CSV) or "record 12" (JSON, 1-based). */
  where: string;
  /** Attributes HR states for this person; null means HR holds no value. Absent: not stated. */
  attributes: Partial<Record<AttributeName, string | null>>;
  status?: HrStatus;
}

export type SnapshotFormat = 'csv' | 'json';

export interface HrSnapshot {
  format: SnapshotFormat;
  /** SHA-256 of the file's bytes: names this exact snapshot (idempotency of --apply). */
  sha256: string;
  records: Map<string, HrRecord>;
  /** Engine attributes present in the snapshot (columns, or keys of any JSON record). */
  attributes: AttributeName[];
  hasStatus: boolean;
  /** Columns (or JSON keys) that are neither employeeId, status nor an engine attribute. */
  ignoredColumns: string[];
}

/** The snapshot cannot be trusted as a whole; nothing may be applied from it. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** The HR feed's own employee id rule: an id the engine could never have stored is a data error. */
const EMPLOYEE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** Column names match case-insensitively, ignoring spaces, '_' and '-': "employee_id" is employeeId. */
const norm = (name: string) => name.toLowerCase().replace(/[\s_-]/g, '');

type Column = { kind: 'employeeId' } | { kind: 'status' } | { kind: 'attribute'; name: AttributeName } | { kind: 'ignored' };

const KNOWN = new Map<string, Column>([
  ['employeeid', { kind: 'employeeId' }],
  ['status', { kind: 'status' }],
  ['employmentstatus', { kind: 'status' }],
  ...ATTRIBUTE_NAMES.map((name): [string, Column] => [norm(name), { kind: 'attribute', name }]),
]);

const columnOf = (name: string): Column => KNOWN.get(norm(name)) ?? { kind: 'ignored' };

function parseStatus(raw: string, where: string): HrStatus | undefined {
  const v = raw.trim().toLowerCase();
  if (v === '') return undefined;
  if ((HR_STATUSES as readonly string[]).includes(v)) return v as HrStatus;
  throw new SnapshotError(`${where}: status ${JSON.stringify(raw)} is not one of ${HR_STATUSES.join(', ')}`);
}

function employeeIdOf(raw: string, where: string): string {
  const id = raw.trim();
  if (id === '') throw new SnapshotError(`${where}: employeeId is empty`);
  if (!EMPLOYEE_ID.test(id)) throw new SnapshotError(`${where}: employeeId ${JSON.stringify(raw)} is not an employee id (letters, digits, . _ : @ -, at most 128)`);
  return id;
}

class Builder {
  readonly records = new Map<string, HrRecord>();
  readonly attributes = new Set<AttributeName>();
  readonly ignored = new Set<string>();
  hasStatus = false;

  add(r: HrRecord): void {
    const seen = this.records.get(r.employeeId);
    if (seen) throw new SnapshotError(`${r.where}: duplicate employeeId ${JSON.stringify(r.employeeId)} (first at ${seen.where})`);
    this.records.set(r.employeeId, r);
  }

  build(format: SnapshotFormat, bytes: Buffer): HrSnapshot {
    return {
      format,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      records: this.records,
      attributes: ATTRIBUTE_NAMES.filter((a) => this.attributes.has(a)),
      hasStatus: this.hasStatus,
      ignoredColumns: [...this.ignored].sort(),
    };
  }
}

/** CSV with a header row. An empty cell means HR holds no value for that attribute. */
export function parseCsvSnapshot(bytes: Buffer): HrSnapshot {
  const b = new Builder();
  const text = decode(bytes);
  let header: { line: number; columns: Column[]; names: string[] } | undefined;
  try {
    for (const rec of parseCsv(text)) {
      if (!header) {
        const columns = rec.fields.map(columnOf);
        const seen = new Map<string, string>();
        rec.fields.forEach((name, i) => {
          const c = columns[i];
          if (c.kind === 'ignored') {
            b.ignored.add(name);
            return;
          }
          const key = c.kind === 'attribute' ? c.name : c.kind;
          if (seen.has(key)) throw new SnapshotError(`line ${rec.line}: columns ${JSON.stringify(seen.get(key))} and ${JSON.stringify(name)} both name ${key}`);
          seen.set(key, name);
          if (c.kind === 'attribute') b.attributes.add(c.name);
          if (c.kind === 'status') b.hasStatus = true;
        });
        if (!seen.has('employeeId')) {
          throw new SnapshotError(`line ${rec.line}: the header row has no employeeId column (found: ${rec.fields.map((f) => JSON.stringify(f)).join(', ')})`);
        }
        header = { line: rec.line, columns, names: rec.fields };
        continue;
      }
      const where = `line ${rec.line}`;
      if (rec.fields.length !== header.columns.length) {
        throw new SnapshotError(`${where}: ${rec.fields.length} fields, but the header (line ${header.line}) has ${header.columns.length}`);
      }
      let employeeId = '';
      let status: HrStatus | undefined;
      const attributes: HrRecord['attributes'] = {};
      header.columns.forEach((c, i) => {
        const v = rec.fields[i];
        if (c.kind === 'employeeId') employeeId = employeeIdOf(v, where);
        else if (c.kind === 'status') status = parseStatus(v, where);
        else if (c.kind === 'attribute') attributes[c.name] = v === '' ? null : v;
      });
      b.add({ employeeId, where, attributes, status });
    }
  } catch (e) {
    if (e instanceof CsvSyntaxError) throw new SnapshotError(`not valid CSV: ${e.message}`);
    throw e;
  }
  if (!header) throw new SnapshotError('the file is empty: a header row with an employeeId column is required');
  return b.build('csv', bytes);
}

/** JSON: an array of records, or { "employees": [...] }. null or "" means HR holds no value. */
export function parseJsonSnapshot(bytes: Buffer): HrSnapshot {
  const text = decode(bytes);
  let doc: unknown;
  try {
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new SnapshotError(`not valid JSON: ${jsonErrorWhere(e as Error, text)}`);
  }
  const list = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.employees) ? doc.employees : undefined;
  if (!list) throw new SnapshotError('a JSON snapshot is an array of records or an object { "employees": [...] }');
  const b = new Builder();
  list.forEach((item: unknown, i: number) => {
    const where = `record ${i + 1}`;
    if (!isObject(item)) throw new SnapshotError(`${where}: a record is a JSON object`);
    let employeeId: string | undefined;
    let status: HrStatus | undefined;
    const attributes: HrRecord['attributes'] = {};
    const seen = new Map<string, string>();
    for (const [key, value] of Object.entries(item)) {
      const c = columnOf(key);
      if (c.kind === 'ignored') {
        b.ignored.add(key);
        continue;
      }
      const name = c.kind === 'attribute' ? c.name : c.kind;
      if (seen.has(name)) throw new SnapshotError(`${where}: keys ${JSON.stringify(seen.get(name))} and ${JSON.stringify(key)} both name ${name}`);
      seen.set(name, key);
      if (value !== null && typeof value !== 'string' && typeof value !== 'number') {
        throw new SnapshotError(`${where}: ${key} must be a string, a number or null`);
      }
      const text = value === null ? '' : String(value);
      if (c.kind === 'employeeId') employeeId = employeeIdOf(text, where);
      else if (c.kind === 'status') {
        status = parseStatus(text, where);
        b.hasStatus = true;
      } else {
        attributes[c.name] = text === '' ? null : text;
        b.attributes.add(c.name);
      }
    }
    if (employeeId === undefined) throw new SnapshotError(`${where}: no employeeId`);
    b.add({ employeeId, where, attributes, status });
  });
  return b.build('json', bytes);
}

/** Chooses the parser from the file name (.csv, .json), else from the first non-blank character. */
export function parseSnapshot(bytes: Buffer, fileName = '', format?: SnapshotFormat): HrSnapshot {
  const f = format ?? (/\.json$/i.test(fileName) ? 'json' : /\.csv$/i.test(fileName) ? 'csv' : sniff(bytes));
  return f === 'json' ? parseJsonSnapshot(bytes) : parseCsvSnapshot(bytes);
}

function sniff(bytes: Buffer): SnapshotFormat {
  const head = bytes.subarray(0, 64).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  return head.startsWith('[') || head.startsWith('{') ? 'json' : 'csv';
}

function decode(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SnapshotError('the file is not UTF-8 text');
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON.parse reports a character position; an operator wants the line. */
function jsonErrorWhere(e: Error, text: string): string {
  const m = /position (\d+)/.exec(e.message);
  if (!m) return e.message;
  const pos = Number(m[1]);
  const line = text.slice(0, pos).split('\n').length;
  return `line ${line}: ${e.message.replace(/\s*\(line \d+ column \d+\)/, '')}`;
}
