import { LIFECYCLE_HEADERS, LifecyclePublisher, silentLogger } from '@idlc/engine';
import type { StoredEvent } from '@idlc/event-store';
import { Admin, Kafka } from 'kafkajs';
import { ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describeIf, serviceEnv } from '../support/services';
import { allEvents, applyDirectly, BIRTHRIGHT, connectTestKafka, createTopics, disconnectTestKafka, hrDataSet, openEngine, ReadMessage, readTopic, TestEngine, uniqueName, waitFor } from './support/kafka-test';

const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');
const ROOT = resolve(__dirname, '../..');

/** Starts the publisher in a child process over the test's SQLite file. */
function startChild(t: TestEngine, topic: string, batchSize: number, hangCheckpointFrom: number): { child: ChildProcess; started: Promise<void>; output: () => string } {
  const child = spawn(
    process.execPath,
    ['-r', join(__dirname, 'support/register-paths.js'), '-r', 'ts-node/register/transpile-only', join(__dirname, 'support/publisher-child.ts')],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
        SQLITE_FILE: t.engine.config.sqliteFile,
        DATA_DIR: t.dir,
        BIRTHRIGHT_POLICY_FILE: BIRTHRIGHT,
        KAFKA_BROKERS: brokers!,
        LIFECYCLE_TOPIC: topic,
        BATCH_SIZE: String(batchSize),
        HANG_CHECKPOINT_FROM: String(hangCheckpointFrom),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const started = new Promise<void>((resolveP, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('started')) resolveP();
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code, signal) => reject(new Error(`publisher child exited (${code ?? signal}) before starting:\n${out}`)));
  });
  return { child, started, output: () => out };
}

const checkpointOf = async (t: TestEngine, topic: string): Promise<number> =>
  Number((await t.engine.readDb.get<{ position: number }>('SELECT position FROM outbox_checkpoints WHERE name = ?', [`kafka:${topic}`]))?.position ?? 0);

/**
 * At-least-once with per-identity order: every stored event is on the topic with its exact value, a
 * key's messages share a partition, and reading a key's messages in order, each one is either a
 * redelivery of an event already seen or the next revision (never a gap, never going back).
 */
function checkTopic(messages: ReadMessage[], stored: StoredEvent[]): { duplicates: number } {
  const byId = new Map(stored.map((e) => [e.id, e]));
  const seen = new Set<string>();
  const keyState = new Map<string, { partition: number; maxRevision: number }>();
  let duplicates = 0;
  const problems: string[] = [];
  for (const m of [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const id = m.headers[LIFECYCLE_HEADERS.eventId];
    const e = byId.get(id);
    if (!e) {
      problems.push(`unknown event ${id}`);
      continue;
    }
    const key = e.streamId.replace(/^identity-/, '');
    if (m.key !== key) problems.push(`${id}: key ${m.key}, want ${key}`);
    const value = JSON.parse(m.value!.toString());
    const want = { id: e.id, position: e.position, streamId: e.streamId, revision: e.revision, type: e.type, version: e.version, data: e.data, recordedAt: e.recordedAt.toISOString(), metadata: e.metadata };
    if (JSON.stringify(value) !== JSON.stringify(want)) problems.push(`${id}: value differs`);
    if (m.headers[LIFECYCLE_HEADERS.eventType] !== e.type || m.headers[LIFECYCLE_HEADERS.schemaVersion] !== String(e.version)) problems.push(`${id}: headers`);
    const k = keyState.get(key) ?? { partition: m.partition, maxRevision: -1 };
    keyState.set(key, k);
    if (k.partition !== m.partition) problems.push(`${key}: on partitions ${k.partition} and ${m.partition}`);
    if (seen.has(id)) {
      duplicates++;
      if (e.revision > k.maxRevision) problems.push(`${id}: duplicate ahead of its key`);
    } else {
      seen.add(id);
      if (e.revision !== k.maxRevision + 1) problems.push(`${key}: revision ${e.revision} after ${k.maxRevision}`);
      k.maxRevision = e.revision;
    }
  }
  const missing = stored.filter((e) => !seen.has(e.id)).map((e) => e.position);
  if (missing.length) problems.push(`${missing.length} events missing, positions ${missing.slice(0, 10).join(', ')}...`);
  expect(problems.slice(0, 20)).toEqual([]);
  return { duplicates };
}

describeIf(brokers)('lifecycle events to Kafka from the store (the outbox) against a real broker', () => {
  jest.setTimeout(90_000);
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => ({ kafka, admin } = await connectTestKafka(brokers!)));
  afterAll(() => disconnectTestKafka(admin));

  it('publishes every stored event, per identity in order, with no loss after the publisher process is SIGKILLed and restarted', async () => {
    const topic = uniqueName('lifecycle-kill');
    await createTopics(admin, [topic]);
    const t = await openEngine();
    let child: ChildProcess | undefined;
    let publisher: LifecyclePublisher | undefined;
    try {
      await applyDirectly(t.engine, hrDataSet('life', 300, 3, 3).events);
      const head = await t.engine.store.headPosition();
      expect(head).toBeGreaterThan(3000);

      // Publish from another process in small batches; once a batch a third of the way in is on the
      // broker but not yet checkpointed, kill the process without warning.
      const hangFrom = Math.floor(head / 3);
      const c = startChild(t, topic, 25, hangFrom);
      child = c.child;
      await c.started;
      await waitFor('a batch acknowledged but not checkpointed', async () => {
        const offsets = await admin.fetchTopicOffsets(topic);
        return offsets.reduce((sum, p) => sum + Number(p.high), 0) >= hangFrom;
      }, 30_000, 10);
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const killedAt = await checkpointOf(t, topic);
      expect(killedAt).toBeGreaterThan(0);
      expect(killedAt).toBeLessThan(hangFrom);

      // The checkpoint never runs ahead of the broker: everything up to it is on the topic already.
      const before = await readTopic(kafka, topic);
      const onTopic = new Set(before.map((m) => m.headers[LIFECYCLE_HEADERS.eventId]));
      const stored = await allEvents(t.engine);
      expect(stored.filter((e) => e.position <= killedAt && !onTopic.has(e.id)).map((e) => e.position)).toEqual([]);

      // More history while the publisher is down, then a restart from the persisted checkpoint.
      await applyDirectly(t.engine, hrDataSet('life-later', 50, 1, 5).events);
      publisher = new LifecyclePublisher(kafka, t.engine.store, t.engine.readDb, { topic, batchSize: 200 }, silentLogger);
      await publisher.start();
      await publisher.caughtUp();
      const all = await allEvents(t.engine);
      expect(publisher.position).toBe(all[all.length - 1].position);
      expect(await checkpointOf(t, topic)).toBe(all[all.length - 1].position);
      await publisher.stop();

      const messages = await readTopic(kafka, topic);
      const { duplicates } = checkTopic(messages, all);
      // What the killed process had sent past its checkpoint is sent again, and nothing else.
      expect(before.length).toBeGreaterThanOrEqual(hangFrom);
      expect(duplicates).toBe(before.length - killedAt);
      expect(messages.length).toBe(all.length + duplicates);
      expect(new Set(messages.map((m) => m.partition))).toEqual(new Set([0, 1, 2]));
    } finally {
      child?.kill('SIGKILL');
      await publisher?.stop();
      await t.close();
    }
  });

  it('a graceful stop finishes the batch in hand; a restart resends nothing', async () => {
    const topic = uniqueName('lifecycle-graceful');
    await createTopics(admin, [topic]);
    const t = await openEngine();
    try {
      await applyDirectly(t.engine, hrDataSet('calm', 100, 2, 9).events);
      const first = new LifecyclePublisher(kafka, t.engine.store, t.engine.readDb, { topic, batchSize: 100 }, silentLogger);
      await first.start();
      await waitFor('some published', () => first.position > 0, 20_000, 5);
      await first.stop();
      const stoppedAt = first.position;
      expect(await checkpointOf(t, topic)).toBe(stoppedAt);
      expect((await readTopic(kafka, topic)).length).toBe(stoppedAt);

      const second = new LifecyclePublisher(kafka, t.engine.store, t.engine.readDb, { topic, batchSize: 100 }, silentLogger);
      await second.start();
      await second.caughtUp();
      await second.stop();
      const all = await allEvents(t.engine);
      const messages = await readTopic(kafka, topic);
      expect(checkTopic(messages, all).duplicates).toBe(0);
      expect(messages).toHaveLength(all.length);
    } finally {
      await t.close();
    }
  });
});
