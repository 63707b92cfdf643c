import type { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { once } from 'node:events';
import {
  applyReconciliation,
  ApplyResult,
  Engine,
  formatReport,
  hasFindings,
  HrSnapshot,
  parseSnapshot,
  reconcile,
  SnapshotError,
  SnapshotFormat,
} from '@idlc/engine';
import { ExitError, exitOnError, EXIT_USAGE, WithEngine } from './cli-support';

/** Exit codes of `idlc reconcile` (sysexits where one fits). */
export const RECONCILE_EXIT = {
  /** No findings, or --apply disabled every orphan. */
  clean: 0,
  /** The report has findings (a dry run). */
  findings: 2,
  /** --apply could not disable some orphan (listed in the report). */
  applyIncomplete: 4,
  /** --apply refused: more orphans than --max-disable allows; nothing was changed. */
  applyLimit: 5,
  usage: EXIT_USAGE,
  /** The snapshot is not a valid snapshot (EX_DATAERR); nothing was read from the engine or applied. */
  dataError: 65,
  /** The snapshot file cannot be read (EX_NOINPUT). */
  noInput: 66,
} as const;

interface Options {
  hrSnapshot: string;
  snapshotFormat?: string;
  ghostDays: string;
  format: string;
  out?: string;
  limit: string;
  apply?: boolean;
  dryRun?: boolean;
  maxDisable: string;
}

const HELP = `
Matching: by HR employee id (the durable key), never by email. An identity answers to its current
employee id and to any earlier HR key (a rehire under a new id).

Findings:
  orphans                 enabled account whose employee id is not in the snapshot (not-in-snapshot),
                          or with no HR link at all, e.g. SSO JIT or SCIM-only (no-hr-link)
  ghosts                  in the snapshot, enabled, never logged in, provisioned more than
                          --ghost-days days ago (engine clock)
  drift                   per attribute: engine value vs snapshot value, only for attributes the
                          snapshot states (an empty cell or null means HR holds no value)
  missing                 in the snapshot (status not terminated) but no live account
  terminated but enabled  status terminated in the snapshot, account still enabled

Snapshot: CSV with a header row (RFC 4180; CRLF or LF; UTF-8, BOM allowed) or JSON (an array of
records, or {"employees": [...]}). Columns: employeeId (required), any engine attribute (givenName,
familyName, displayName, email, phone, address, department, title, managerId, managerName, location,
costCenter, employmentType, division, organization), and optionally status or employmentStatus
(active, pending, leave, terminated). Names match case-insensitively, ignoring spaces, _ and -.
Other columns are ignored (listed in the report).

--apply disables the orphans only, through the normal command path (reason reconciliation, source
reconciliation, actor cli). Each disable is idempotent per identity and snapshot (sha256 of the
file), so running the same apply again appends nothing, even for an account re-enabled since.
Without --apply nothing is changed. A truncated or wrong snapshot would make everyone an orphan, so
--apply refuses (and changes nothing) when the orphans exceed --max-disable: a count, or a
percentage of the enabled accounts (default 5%).

Exit codes: 0 no findings, or --apply disabled every orphan; 2 findings (dry run); 4 --apply left an
orphan enabled; 5 --apply refused by --max-disable; 64 bad arguments; 65 invalid snapshot (the
message names the line or record; nothing is read or applied); 66 snapshot file unreadable;
78 bad configuration.`;

/** `idlc reconcile`: the engine's accounts against an authoritative HR snapshot. */
export function registerReconcileCommand(
  program: Command,
  withEngine: WithEngine,
  progressBar: (label: string) => SingleBar,
): void {
  program
    .command('reconcile')
    .description('compare accounts with an HR snapshot: orphans, ghosts, drift, missing, terminated but enabled; --apply disables orphans')
    .requiredOption('--hr-snapshot <file>', 'the HR snapshot, .csv or .json ("-" reads stdin)')
    .option('--snapshot-format <format>', 'csv or json (default: from the file name, else from its first character)')
    .option('--ghost-days <days>', 'never logged in and provisioned more than this many days ago is a ghost', '30')
    .option('--format <format>', 'human or json', 'human')
    .option('--out <file>', 'write the report to this file instead of stdout')
    .option('--limit <n>', 'items shown per category in the human format (0 = all)', '20')
    .option('--apply', 'disable the orphans (reason reconciliation)')
    .option('--dry-run', 'report only (the default)')
    .option('--max-disable <limit>', '--apply disables at most this many orphans (n), or this share of the enabled accounts (n%)', '5%')
    .addHelpText('after', HELP)
    // A missing or unknown option is a usage error like the others: exit 64, not commander's 1.
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : RECONCILE_EXIT.usage))
    .action((o: Options) => exitOnError(() => run(o, withEngine, progressBar)));
}

function options(o: Options) {
  const usage = (m: string) => new ExitError(m, RECONCILE_EXIT.usage);
  if (o.apply && o.dryRun) throw usage('give --apply or --dry-run, not both');
  if (o.format !== 'human' && o.format !== 'json') throw usage('--format must be human or json');
  if (o.snapshotFormat !== undefined && o.snapshotFormat !== 'csv' && o.snapshotFormat !== 'json') throw usage('--snapshot-format must be csv or json');
  const ghostDays = Number(o.ghostDays);
  if (!/^\d+$/.test(o.ghostDays) || ghostDays > 36500) throw usage('--ghost-days must be a whole number of days (0-36500)');
  const limit = Number(o.limit);
  if (!/^\d+$/.test(o.limit)) throw usage('--limit must be a whole number (0 = all)');
  // Checked up front: a report that cannot be written after --apply would hide what was disabled.
  if (o.out !== undefined && !existsSync(dirname(resolve(o.out)))) throw usage(`--out: directory ${dirname(resolve(o.out))} does not exist`);
  const m = /^(\d+)(%?)$/.exec(o.maxDisable);
  if (!m || (m[2] && Number(m[1]) > 100)) throw usage('--max-disable must be a count (e.g. 50) or a percentage of the enabled accounts (e.g. 5%)');
  const maxDisable = (enabled: number) => (m[2] ? Math.floor((enabled * Number(m[1])) / 100) : Number(m[1]));
  return { ghostDays, limit, maxDisable, format: o.format as 'human' | 'json', snapshotFormat: o.snapshotFormat as SnapshotFormat | undefined };
}

function readSnapshot(file: string, format: SnapshotFormat | undefined): HrSnapshot {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    throw new ExitError(`cannot read the HR snapshot ${file}: ${(e as Error).message}`, RECONCILE_EXIT.noInput);
  }
  try {
    return parseSnapshot(bytes, file === '-' ? '' : file, format);
  } catch (e) {
    if (e instanceof SnapshotError) throw new ExitError(`invalid HR snapshot ${file}: ${e.message}; nothing was applied`, RECONCILE_EXIT.dataError);
    throw e;
  }
}

async function run(o: Options, withEngine: WithEngine, progressBar: (label: string) => SingleBar): Promise<void> {
  const opts = options(o);
  // The whole snapshot is validated before the engine is even opened: a bad file changes nothing.
  const snapshot = readSnapshot(o.hrSnapshot, opts.snapshotFormat);
  const file = o.hrSnapshot === '-' ? null : o.hrSnapshot;

  let refusal: string | undefined;
  const { report, applied } = await withEngine(async (engine) => {
    const total = Number((await engine.readDb.get<{ n: number }>('SELECT count(*) AS n FROM identities'))?.n ?? 0);
    const bar = progressBar('comparing');
    bar.start(total, 0);
    const report = await reconcile(engine, snapshot, { ghostDays: opts.ghostDays, file: file ?? undefined, onProgress: (n) => bar.update(Math.min(n, total)) });
    bar.stop();
    let applied: ApplyResult | undefined;
    const limit = opts.maxDisable(report.accountsEnabled);
    if (o.apply && report.orphans.length > limit) {
      refusal =
        `--apply refused: ${report.orphans.length} orphans of ${report.accountsEnabled} enabled accounts exceed --max-disable ${o.maxDisable} (${limit}); ` +
        'nothing was changed. Check the snapshot is complete, then raise --max-disable if these really are orphans.';
    } else if (o.apply) {
      const applying = progressBar('disabling orphans');
      applying.start(report.orphans.length, 0);
      applied = await applyReconciliation(engine, report, { actor: 'cli', onProgress: (n) => applying.update(n) });
      applying.stop();
    }
    return { report, applied };
  });

  const text =
    opts.format === 'json'
      ? JSON.stringify({ ...report, mode: o.apply ? 'apply' : 'dry-run', applied: applied ?? null, refused: refusal ?? null }, null, 2) + '\n'
      : formatReport(report, { limit: opts.limit, applied, refused: refusal });
  if (o.out) {
    // Written beside the target and renamed, so a reader never sees half a report.
    const tmp = `${o.out}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, o.out);
    const c = report.counts;
    console.error(
      `report written to ${o.out}: orphans ${c.orphans}, ghosts ${c.ghosts}, drift ${c.drift}, missing ${c.missing}, terminated but enabled ${c.terminatedButEnabled}` +
        (applied ? `; disabled ${applied.disabled}, refused ${applied.refused}` : ''),
    );
  } else if (!process.stdout.write(text)) {
    await once(process.stdout, 'drain');
  }

  if (refusal) {
    console.error(refusal);
    process.exitCode = RECONCILE_EXIT.applyLimit;
  } else if (applied) process.exitCode = applied.refused ? RECONCILE_EXIT.applyIncomplete : RECONCILE_EXIT.clean;
  else process.exitCode = hasFindings(report) ? RECONCILE_EXIT.findings : RECONCILE_EXIT.clean;
}
