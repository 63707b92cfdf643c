import 'reflect-metadata';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { ConfigError, Engine, loadConfig } from '@idlc/engine';
import { PolicyError } from '@idlc/domain';
import { randomUUID } from 'node:crypto';
import { registerAuditCommands } from './audit-commands';
import { registerCredentialCommands } from './credential-commands';
import { registerReconcileCommand } from './reconcile-command';

async function withEngine<T>(fn: (engine: Engine) => Promise<T>): Promise<T> {
  let engine: Engine;
  try {
    engine = await Engine.open({ config: loadConfig() });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof PolicyError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

const progressBar = (label: string) =>
  new SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, hideCursor: true, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1000 }, Presets.shades_classic);

const program = new Command('idlc').description('idlc: identity lifecycle engine command line');

program
  .command('projections:rebuild')
  .description('drop every read model and rebuild it from position zero')
  .action(() =>
    withEngine(async (engine) => {
      const head = await engine.store.headPosition();
      const bar = progressBar('rebuilding');
      bar.start(head, 0);
      const started = Date.now();
      await engine.projections.reset();
      await engine.projections.runToHead((position) => bar.update(position));
      bar.update(head);
      bar.stop();
      const secs = (Date.now() - started) / 1000;
      console.log(JSON.stringify({ rebuilt: engine.projections.status(), events: head, seconds: secs, eventsPerSecond: Math.round(head / Math.max(secs, 0.001)) }));
    }),
  );

program
  .command('reconcile-birthright')
  .description('recompute every identity\'s birthright roles after the policy file changed')
  .action(() =>
    withEngine(async (engine) => {
      await engine.projections.runToHead();
      const rows = await engine.readDb.all<{ identity_id: string }>("SELECT identity_id FROM identities WHERE account_status <> 'deleted' ORDER BY identity_id");
      const bar = progressBar('reconciling');
      bar.start(rows.length, 0);
      let changed = 0;
      const correlationId = randomUUID();
      for (const [i, r] of rows.entries()) {
        const out = await engine.commands.execute(r.identity_id, [{ kind: 'RecomputeBirthright' }], {
          metadata: { source: 'cli', actor: 'cli:reconcile-birthright', correlationId },
        });
        if (out.events.length) changed++;
        bar.update(i + 1);
      }
      bar.stop();
      console.log(JSON.stringify({ identities: rows.length, changed }));
    }),
  );

registerAuditCommands(program, withEngine, progressBar);
registerCredentialCommands(program, withEngine);
registerReconcileCommand(program, withEngine, progressBar);

program.parseAsync(process.argv).catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
