import type { SqlDatabase } from '@idlc/sql';
import { resolve } from 'node:path';
import { runCli } from '../support/cli';

export const ROOT = resolve(__dirname, '../..');
export const POLICY = resolve(ROOT, 'config/birthright.yaml');

/** The built idlc CLI as an operator runs it (npm run build first). */
export const cli = (args: string[], env: Record<string, string>) => runCli(args, env);

/** Every row of every table of the engine's database (events, claims, snapshots, keys, read models), as text. */
export async function dumpDatabase(db: SqlDatabase): Promise<Map<string, string>> {
  const tables =
    db.dialect === 'sqlite'
      ? (await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")).map((r) => r.name)
      : (await db.all<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).map((r) => r.name);
  const out = new Map<string, string>();
  for (const t of tables.sort()) out.set(t, JSON.stringify(await db.all(`SELECT * FROM ${t}`)));
  return out;
}

/** Which of the values occur (case-insensitively) in which table. */
export function occurrences(dump: Map<string, string>, values: string[]): string[] {
  const found: string[] = [];
  for (const [table, text] of dump) {
    const lc = text.toLowerCase();
    for (const v of values) if (lc.includes(v.toLowerCase())) found.push(`${table}: ${v}`);
  }
  return found;
}

/** Every string leaf of a JSON value. */
export function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => strings(x, out));
  return out;
}

/** The value with every string that is one of `personal` replaced by the erased marker: what the test expects a reader to see. */
export function masked(v: unknown, personal: Set<string>): unknown {
  if (typeof v === 'string') return personal.has(v) ? '[erased]' : v;
  if (Array.isArray(v)) return v.map((x) => masked(x, personal));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, masked(x, personal)]));
  return v;
}
