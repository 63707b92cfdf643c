import type { Command } from 'commander';
import { Credential, CredentialError, SCOPES } from '@idlc/engine';
import { EXIT_NOT_FOUND, ExitError, exitOnError, WithEngine } from './cli-support';

const row = (c: Credential) =>
  [c.id, c.name, c.scopes.join(','), c.createdAt, c.expiresAt ?? '-', c.revokedAt ? `revoked ${c.revokedAt}` : 'active', c.lastUsedAt ?? '-'].join('\t');

/** `idlc credentials:create|list|revoke`: the only place a token is ever shown is create's output. */
export function registerCredentialCommands(program: Command, withEngine: WithEngine): void {
  program
    .command('credentials:create')
    .description(`create an API credential and print its token once (scopes: ${SCOPES.join(', ')})`)
    .requiredOption('--name <name>', 'who or what uses it, e.g. "workday-webhook"')
    .requiredOption('--scopes <list>', 'comma-separated scopes')
    .option('--expires-in-days <n>', 'expire after this many days')
    .option('--json', 'print the credential and token as JSON')
    .action((opts: { name: string; scopes: string; expiresInDays?: string; json?: boolean }) =>
      withEngine((engine) => exitOnError(async () => {
        let expiresAt: Date | undefined;
        if (opts.expiresInDays !== undefined) {
          const days = Number(opts.expiresInDays);
          if (!Number.isInteger(days) || days < 1 || days > 3650) throw new ExitError('--expires-in-days must be a whole number of days, 1-3650');
          expiresAt = new Date(engine.clock.now().getTime() + days * 86_400_000);
        }
        const scopes = opts.scopes.split(',').map((s) => s.trim()).filter(Boolean);
        try {
          const c = await engine.credentials.create({ name: opts.name, scopes, expiresAt });
          if (opts.json) {
            console.log(JSON.stringify(c));
          } else {
            console.log(`Created credential ${c.id} "${c.name}" with scopes ${c.scopes.join(', ')}${c.expiresAt ? `, expiring ${c.expiresAt}` : ''}.`);
            console.log('Token (shown only now; only its hash is stored):');
            console.log(c.token);
          }
        } catch (e) {
          if (e instanceof CredentialError) throw new ExitError(e.message);
          throw e;
        }
      })),
    );

  program
    .command('credentials:list')
    .description('list API credentials (never their secrets)')
    .option('--json', 'one JSON document')
    .action((opts: { json?: boolean }) =>
      withEngine(async (engine) => {
        const all = await engine.credentials.list();
        if (opts.json) return console.log(JSON.stringify({ credentials: all }));
        console.log(['id', 'name', 'scopes', 'created', 'expires', 'status', 'last used'].join('\t'));
        for (const c of all) console.log(row(c));
      }),
    );

  program
    .command('credentials:revoke <id>')
    .description('revoke an API credential')
    .action((id: string) =>
      withEngine((engine) => exitOnError(async () => {
        const c = await engine.credentials.revoke(id);
        if (!c) throw new ExitError(`no credential ${id}`, EXIT_NOT_FOUND);
        console.log(`Revoked credential ${c.id} "${c.name}" at ${c.revokedAt}.`);
      })),
    );
}
