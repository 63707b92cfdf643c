import { HrFeedService, HrKafkaConsumer, silentLogger } from '@idlc/engine';
import { EventStoreUnavailableError } from '@idlc/event-store';
import { Admin, Kafka } from 'kafkajs';
import { describeIf, serviceEnv } from '../support/services';
import {
  applyDirectly,
  committed,
  connectTestKafka,
  createTopics,
  disconnectTestKafka,
  endOffsets,
  historiesByEmployee,
  hrDataSet,
  HrDataSet,
  hrMessage,
  openEngine,
  produce,
  readTopic,
  TestEngine,
  uniqueName,
  waitFor,
} from './support/kafka-test';

const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');

const EMPLOYEES = 2000;
const CHANGES_EACH = 4; // 2,000 hires + 8,000 changes = 10,000 HR events

describeIf(brokers)('HR feed over Kafka against a real broker', () => {
  jest.setTimeout(120_000);
  let kafka: Kafka;
  let admin: Admin;
  let data: HrDataSet;
  let expected: Map<string, string[]>;
  let expectedCount: number;

  beforeAll(async () => {
    ({ kafka, admin } = await connectTestKafka(brokers!));
    data = hrDataSet('bulk', EMPLOYEES, CHANGES_EACH);
    expect(data.events).toHaveLength(10_000);
    // The reference: the same HR events applied in order without Kafka.
    const ref = await openEngine();
    try {
      await applyDirectly(ref.engine, data.events);
      expectedCount = await ref.engine.store.headPosition();
      expected = await historiesByEmployee(ref.engine);
    } finally {
      await ref.close();
    }
    expect(expected.size).toBe(EMPLOYEES);
  });

  afterAll(() => disconnectTestKafka(admin));

  const consumerFor = (t: TestEngine, topic: string, groupId: string, dlqTopic: string, extra: Partial<ConstructorParameters<typeof HrKafkaConsumer>[3]> = {}) =>
    new HrKafkaConsumer(kafka, new HrFeedService(t.engine.commands), t.engine.clock, { topic, groupId, dlqTopic, maxWaitTimeInMs: 100, ...extra }, silentLogger);

  /** Every identity ends with the generated attributes and exactly the reference's history. */
  async function expectAllAppliedOnce(t: TestEngine): Promise<void> {
    expect(await t.engine.store.headPosition()).toBe(expectedCount);
    const got = await historiesByEmployee(t.engine);
    expect(got.size).toBe(EMPLOYEES);
    let mismatches = 0;
    for (const [employeeId, history] of expected) if (JSON.stringify(got.get(employeeId)) !== JSON.stringify(history)) mismatches++;
    expect(mismatches).toBe(0);
    let wrong = 0;
    for (const [employeeId, attrs] of data.finalAttributes) {
      const id = await t.engine.commands.findByKey(`hr:${employeeId}`);
      const state = await t.engine.repository.load(id!);
      if (state.employeeId !== employeeId || state.employment !== 'active' || Object.entries(attrs).some(([k, v]) => (state.attributes as any)[k] !== v)) wrong++;
    }
    expect(wrong).toBe(0);
  }

  it('applies 10,000 HR events (2,000 hires, 8,000 changes) exactly once and commits every offset', async () => {
    const topic = uniqueName('hr-bulk');
    const dlq = uniqueName('hr-bulk-dlq');
    const group = uniqueName('hr-bulk-group');
    await createTopics(admin, [topic, dlq]);
    await produce(kafka, topic, data.events.map((e) => hrMessage(e)));
    const t = await openEngine();
    const consumer = consumerFor(t, topic, group, dlq);
    try {
      await consumer.start();
      await waitFor('10,000 messages processed', () => consumer.stats.processed >= 10_000, 90_000);
      await consumer.stop();
      expect(consumer.stats).toMatchObject({ processed: 10_000, applied: 10_000, duplicate: 0, unchanged: 0, deadLettered: 0, retries: 0 });
      expect(await committed(admin, group, topic)).toEqual(await endOffsets(admin, topic));
      await expectAllAppliedOnce(t);
      const events = await t.engine.store.readAll({ maxCount: 1 });
      expect(events[0].metadata).toMatchObject({ source: 'hr-kafka', actor: expect.stringMatching(new RegExp(`^kafka:${topic.replace(/\./g, '\\.')}/[0-2]@\\d+$`)) });
      expect(await readTopic(kafka, dlq)).toEqual([]);
    } finally {
      await consumer.stop();
      await t.close();
    }
  });

  it('stopped mid-way and restarted from rewound offsets (redelivery as after a crash), appends nothing twice', async () => {
    const topic = uniqueName('hr-restart');
    const dlq = uniqueName('hr-restart-dlq');
    const group = uniqueName('hr-restart-group');
    await createTopics(admin, [topic, dlq]);
    await produce(kafka, topic, data.events.map((e) => hrMessage(e)));
    const t = await openEngine();
    const first = consumerFor(t, topic, group, dlq);
    const second = consumerFor(t, topic, group, dlq);
    try {
      await first.start();
      await waitFor('3,000 messages processed', () => first.stats.processed >= 3000, 60_000);
      await first.stop();
      // -1: a partition this consumer had not finished a message of yet.
      const stoppedAt = new Map([...(await committed(admin, group, topic))].map(([p, o]) => [p, Math.max(0, o)]));
      const committedCount = [...stoppedAt.values()].reduce((a, b) => a + b, 0);
      // Offsets are committed only for messages whose append succeeded, and all of those are.
      expect(committedCount).toBe(first.stats.processed);
      expect(first.stats.processed).toBeLessThan(10_000);
      expect(await t.engine.store.headPosition()).toBeLessThan(expectedCount);

      // A crash after appending but before committing redelivers: rewind each partition by up to 400.
      const rewound = new Map([...stoppedAt].map(([p, o]) => [p, Math.max(0, o - 400)]));
      await admin.setOffsets({ groupId: group, topic, partitions: [...rewound].map(([partition, o]) => ({ partition, offset: String(o) })) });
      const redelivered = [...stoppedAt].reduce((sum, [p, o]) => sum + o - rewound.get(p)!, 0);
      expect(redelivered).toBeGreaterThan(0);

      await second.start();
      await waitFor('the rest processed', () => second.stats.processed >= 10_000 - committedCount + redelivered, 90_000);
      await second.stop();
      expect(second.stats).toMatchObject({ processed: 10_000 - committedCount + redelivered, duplicate: redelivered, deadLettered: 0 });
      expect(first.stats.applied + second.stats.applied).toBe(10_000);
      expect(await committed(admin, group, topic)).toEqual(await endOffsets(admin, topic));
      await expectAllAppliedOnce(t);
    } finally {
      await first.stop();
      await second.stop();
      await t.close();
    }
  });

  it('retries a transient store failure with backoff, never committing past it or skipping ahead; a stop mid-retry resumes there', async () => {
    const topic = uniqueName('hr-transient');
    const dlq = uniqueName('hr-transient-dlq');
    const group = uniqueName('hr-transient-group');
    await createTopics(admin, [topic, dlq], 1);
    const small = hrDataSet('transient', 10, 2, 11).events; // 30 events, one partition
    await produce(kafka, topic, small.map((e) => hrMessage(e)));
    const t = await openEngine();
    const store = t.engine.store;
    const append = store.append.bind(store);
    // The store is "down" for two of the messages until released.
    const down = new Map([[small[12].eventId, 0], [small[20].eventId, 0]]);
    store.append = (async (streamId: string, events: any, expectedRev: any, options: any) => {
      const hrEventId = String(options?.idempotencyKey ?? '').slice('hr:'.length);
      if (down.has(hrEventId)) {
        down.set(hrEventId, down.get(hrEventId)! + 1);
        throw new EventStoreUnavailableError('database is down (test)');
      }
      return append(streamId, events, expectedRev, options);
    }) as typeof store.append;
    const appliedIds = async () => [...new Set((await t.engine.store.readAll({ maxCount: 10_000 })).map((e) => String(e.metadata.hrEventId)))];
    const first = consumerFor(t, topic, group, dlq, { retryInitialMs: 20, retryMaxMs: 200 });
    const second = consumerFor(t, topic, group, dlq, { retryInitialMs: 20, retryMaxMs: 200 });
    try {
      await first.start();
      await waitFor('three failed attempts at offset 12', () => down.get(small[12].eventId)! >= 3, 20_000);
      // Stuck on offset 12: the 12 before it applied, nothing after it, nothing committed past it.
      expect(first.stats.processed).toBe(12);
      expect(await appliedIds()).toEqual(small.slice(0, 12).map((e) => e.eventId));
      expect((await committed(admin, group, topic)).get(0)!).toBeLessThanOrEqual(12);

      const failuresAt12 = down.get(small[12].eventId)!;
      down.delete(small[12].eventId);
      await waitFor('three failed attempts at offset 20', () => down.get(small[20].eventId)! >= 3, 20_000);
      expect(first.stats.processed).toBe(20);
      expect(first.stats.retries).toBe(failuresAt12 + down.get(small[20].eventId)!);

      // Stopping while it still fails: prompt, and the commit stops right before the failing message.
      const t0 = Date.now();
      await first.stop();
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await committed(admin, group, topic)).toEqual(new Map([[0, 20]]));
      expect(await appliedIds()).toEqual(small.slice(0, 20).map((e) => e.eventId));

      down.clear();
      await second.start();
      await waitFor('the last 10 processed', () => second.stats.processed >= 10, 20_000);
      await second.stop();
      expect(second.stats).toMatchObject({ processed: 10, applied: 10, duplicate: 0, deadLettered: 0, retries: 0 });
      expect(await committed(admin, group, topic)).toEqual(new Map([[0, 30]]));
      expect(await appliedIds()).toEqual(small.map((e) => e.eventId));
      expect(await readTopic(kafka, dlq)).toEqual([]);
    } finally {
      await first.stop();
      await second.stop();
      await t.close();
    }
  });
});
