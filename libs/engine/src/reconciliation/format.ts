import type { ReconciliationReport } from './compare';
import type { ApplyResult } from './reconcile';

/** Rows as fixed-width columns; the last column is not padded. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)];
}

const v = (x: string | null | undefined) => (x === null || x === undefined || x === '' ? '-' : x);
const q = (x: string | null) => (x === null ? '(none)' : JSON.stringify(x));

/**
 * The report for a person at a terminal: counts first, then up to `limit` items per category
 * (0 = all). The JSON format is the one to feed other programs.
 */
export function formatReport(r: ReconciliationReport, o: { limit?: number; applied?: ApplyResult; refused?: string } = {}): string {
  const { limit = 20, applied } = o;
  const out: string[] = [];
  const s = r.snapshot;
  out.push(`HR reconciliation as of ${r.generatedAt}`);
  out.push(`snapshot ${s.file ?? '(stdin)'}: ${s.format}, ${s.records} records, sha256 ${s.sha256.slice(0, 16)}…`);
  out.push(`compared attributes: ${s.attributes.length ? s.attributes.join(', ') : '(none)'}; status column: ${s.hasStatus ? 'yes' : 'no'}`);
  if (s.ignoredColumns.length) out.push(`ignored columns: ${s.ignoredColumns.join(', ')}`);
  out.push(`identities scanned: ${r.identitiesScanned} (${r.accountsEnabled} enabled)`);
  out.push('');
  const c = r.counts;
  out.push(
    ...table(
      ['finding', 'count', 'meaning'],
      [
        ['orphans', String(c.orphans), 'enabled account, no HR record (or no HR link at all)'],
        ['ghosts', String(c.ghosts), `in HR, never logged in, provisioned more than ${r.options.ghostDays} days ago`],
        ['drift', String(c.drift), `attributes differ from HR (${c.driftedAttributes} attribute values)`],
        ['missing', String(c.missing), 'in HR, no account'],
        ['terminated but enabled', String(c.terminatedButEnabled), 'terminated in HR, account still enabled'],
      ],
    ),
  );

  const section = <T>(title: string, items: T[], header: string[], row: (x: T) => string[]) => {
    if (!items.length) return;
    const shown = limit > 0 ? items.slice(0, limit) : items;
    out.push('', `${title} (${items.length})`, ...table(header, shown.map(row)));
    if (shown.length < items.length) out.push(`  … ${items.length - shown.length} more (--limit 0 or --format json for every item)`);
  };
  section('ORPHANS', r.orphans, ['identity', 'employee', 'reason', 'linked by', 'last login', 'email'], (o) => [
    o.identityId,
    v(o.employeeId),
    o.reason,
    v(o.linkedBy.join('+')),
    v(o.lastLoginAt),
    v(o.email),
  ]);
  section('GHOSTS', r.ghosts, ['identity', 'employee', 'provisioned', 'days', 'email'], (g) => [
    g.identityId,
    g.employeeId,
    g.provisionedAt,
    String(g.daysSinceProvisioned),
    v(g.email),
  ]);
  const driftRows = r.drift.flatMap((d) => d.differences.map((x) => ({ d, x })));
  section('DRIFT, one row per differing attribute value', driftRows, ['identity', 'employee', 'attribute', 'engine', 'snapshot'], ({ d, x }) => [
    d.identityId,
    d.employeeId,
    x.attribute,
    q(x.engine),
    q(x.snapshot),
  ]);
  section('MISSING', r.missing, ['employee', 'where', 'status', 'reason', 'identity'], (m) => [m.employeeId, m.where, v(m.status), m.reason, v(m.identityId)]);
  section('TERMINATED IN HR BUT ENABLED', r.terminatedButEnabled, ['identity', 'employee', 'engine employment', 'last login', 'email'], (t) => [
    t.identityId,
    t.employeeId,
    t.employment,
    v(t.lastLoginAt),
    v(t.email),
  ]);

  if (applied) {
    out.push('', `APPLIED (correlation ${applied.correlationId}): disabled ${applied.disabled}, already applied ${applied.alreadyApplied}, unchanged ${applied.unchanged}, refused ${applied.refused}`);
    if (applied.items.length) {
      // Every change is listed, whatever --limit says.
      out.push(...table(['identity', 'employee', 'outcome', 'detail'], applied.items.map((i) => [i.identityId, v(i.employeeId), i.outcome, v(i.detail)])));
    }
  } else if (o.refused) {
    out.push('', o.refused);
  } else if (c.orphans) {
    out.push('', 'dry run: nothing was changed (--apply disables the orphans)');
  }
  return out.join('\n') + '\n';
}
