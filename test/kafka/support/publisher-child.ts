/**
 * The lifecycle publisher alone in its own process, so a test can SIGKILL it mid-stream. Reads its
 * settings from the environment: SQLITE_FILE (shared with the test), KAFKA_BROKERS, LIFECYCLE_TOPIC,
 * BATCH_SIZE. Prints "started" once publishing. With HANG_CHECKPOINT_FROM=n the checkpoint write that
 * would reach position n never returns: the batch is on the broker but not checkpointed, which is
 * exactly where a crash leaves duplicates behind.
 */
import 'reflect-metadata';
import { createKafka, Engine, LifecyclePublisher, loadConfig } from '@idlc/engine';

async function main(): Promise<void> {
  const env = process.env;
  const config = loadConfig({ SQLITE_FILE: env.SQLITE_FILE, DATA_DIR: env.DATA_DIR, BIRTHRIGHT_POLICY_FILE: env.BIRTHRIGHT_POLICY_FILE, LOG_LEVEL: 'silent' });
  const engine = await Engine.open({ config });
  const hangFrom = Number(env.HANG_CHECKPOINT_FROM ?? 0);
  if (hangFrom > 0) {
    const run = engine.readDb.run.bind(engine.readDb);
    engine.readDb.run = async (sql: string, params?: readonly unknown[]) => {
      if (sql.includes('outbox_checkpoints') && Number(params?.[1]) >= hangFrom) await new Promise(() => undefined);
      return run(sql, params);
    };
  }
  const logger = { info: () => undefined, warn: (m: string, x?: object) => console.error(m, x), error: (m: string, x?: object) => console.error(m, x) };
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS!.split(','), clientId: 'idlc-test-publisher-child' }, logger);
  const publisher = new LifecyclePublisher(kafka, engine.store, engine.readDb, { topic: env.LIFECYCLE_TOPIC!, batchSize: Number(env.BATCH_SIZE ?? 500) }, logger);
  await publisher.start();
  process.stdout.write('started\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
