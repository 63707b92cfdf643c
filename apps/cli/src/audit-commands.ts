import type { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import { once } from 'node:events';
import { heldRoles, identityStream } from '@idlc/domain';
import { Engine, exportLines, ExportFormat, publicState, verifyChains } from '@idlc/engine';
import { EXIT_NOT_FOUND, ExitError, exitOnError, WithEngine } from './cli-support';

/** Exit code of `verify` when a hash chain is broken. */
export const EXIT_CHAIN_BROKEN = 2;

function instant(name: string, v: string | undefined, required = false): Date | undefined {
  if (v === undefined) {
    if (required) throw new ExitError(`--${name} is required (ISO 8601 instant)`);
    return undefined;
  }
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw new ExitError(`--${name} must be an ISO 8601 instant, got ${JSON.stringify(v)}`);
  return d;
}

async function existingIdentity(engine: Engine, id: string): Promise<string> {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new ExitError(`--identity must be an identity id, got ${JSON.stringify(id)}`);
  if ((await engine.store.streamRevision(identityStream(id))) < 0) throw new ExitError(`no identity ${id}`, EXIT_NOT_FOUND);
  return id;
}

/** Writes with backpressure, so a slow consumer of stdout never makes the export buffer in memory. */
async function write(chunk: string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

/** The auditor toolkit commands: verify, export, state, access-report. */
export function registerAuditCommands(program: Command, withEngine: WithEngine, progressBar: (label: string) => SingleBar): void {
  const run = (fn: (engine: Engine) => Promise<void>) => withEngine((engine) => exitOnError(() => fn(engine)));

  program
    .command('verify')
    .description('recompute the hash chains of identity and group streams; exit 2 and report the first broken link')
    .option('--identity <id>', 'only this identity')
    .action((o: { identity?: string }) =>
      run(async (engine) => {
        const streamId = o.identity ? identityStream(await existingIdentity(engine, o.identity)) : undefined;
        const head = await engine.store.headPosition();
        const bar = progressBar('verifying');
        bar.start(head, 0);
        const result = await verifyChains(engine.rawStore, { streamId, onProgress: (p) => bar.update(Math.min(p, head)) });
        bar.update(head);
        bar.stop();
        console.log(JSON.stringify(result));
        if (!result.ok) process.exitCode = EXIT_CHAIN_BROKEN;
      }),
    );

  program
    .command('export')
    .description('stream events (one identity or all) to stdout as JSON lines or CSV')
    .option('--identity <id>', 'only this identity')
    .option('--all', 'every stream')
    .option('--from <iso>', 'recorded at or after this instant')
    .option('--to <iso>', 'recorded at or before this instant')
    .option('--format <format>', 'jsonl or csv', 'jsonl')
    .action((o: { identity?: string; all?: boolean; from?: string; to?: string; format: string }) =>
      run(async (engine) => {
        if (!!o.identity === !!o.all) throw new ExitError('give exactly one of --identity <id> or --all');
        if (o.format !== 'jsonl' && o.format !== 'csv') throw new ExitError('--format must be jsonl or csv');
        const from = instant('from', o.from);
        const to = instant('to', o.to);
        if (from && to && from > to) throw new ExitError('--from must not be after --to');
        const identityId = o.identity ? await existingIdentity(engine, o.identity) : undefined;
        const head = await engine.store.headPosition();
        const bar = progressBar('exporting');
        bar.start(head, 0);
        for await (const line of exportLines(engine.store, o.format as ExportFormat, { identityId, from, to }, (p) => bar.update(Math.min(p, head)))) {
          await write(line);
        }
        bar.update(head);
        bar.stop();
      }),
    );

  program
    .command('state')
    .description('state and roles of an identity as of an instant, replayed from its stream')
    .requiredOption('--identity <id>', 'the identity')
    .requiredOption('--at <iso>', 'the instant')
    .action((o: { identity: string; at: string }) =>
      run(async (engine) => {
        const at = instant('at', o.at, true)!;
        const id = await existingIdentity(engine, o.identity);
        const state = await engine.repository.stateAt(id, at);
        if (state.revision < 0) {
          console.log(JSON.stringify({ at: at.toISOString(), existed: false, identity: null }));
          return;
        }
        const s = publicState(state);
        console.log(JSON.stringify({ at: at.toISOString(), existed: true, heldRoles: heldRoles(s), identity: s }));
      }),
    );

  program
    .command('access-report')
    .description('who held which role at an instant (from the role_assignments read model)')
    .requiredOption('--at <iso>', 'the instant')
    .action((o: { at: string }) =>
      run(async (engine) => {
        const at = instant('at', o.at, true)!;
        // The report reads a projection: bring it up to the store's head first.
        await engine.projections.runToHead();
        const t = at.getTime();
        const rows = await engine.readDb.all<{ identity_id: string; employee_id: string | null; role: string; source: string; granted_at: number }>(
          `SELECT r.identity_id, i.employee_id, r.role, r.source, r.granted_at FROM role_assignments r
           LEFT JOIN identities i ON i.identity_id = r.identity_id
           WHERE r.granted_at <= ? AND (r.revoked_at IS NULL OR r.revoked_at > ?)
           ORDER BY r.identity_id, r.role, r.granted_at`,
          [t, t],
        );
        console.log(
          JSON.stringify({
            at: at.toISOString(),
            assignments: rows.map((r) => ({
              identityId: r.identity_id,
              employeeId: r.employee_id ?? null,
              role: r.role,
              source: JSON.parse(r.source),
              grantedAt: new Date(Number(r.granted_at)).toISOString(),
            })),
          }),
        );
      }),
    );
}
