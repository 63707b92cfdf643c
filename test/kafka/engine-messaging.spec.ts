import { DLQ_HEADERS, LIFECYCLE_HEADERS } from '@idlc/engine';
import { Admin, Kafka } from 'kafkajs';
import { describeIf, serviceEnv } from '../support/services';
import { allEvents, connectTestKafka, disconnectTestKafka, hireEvent, openEngine, produce, readTopic, suiteTopics, TestEngine, waitFor } from './support/kafka-test';

const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');

const hire = (eventId: string, employeeId: string, department = 'Engineering') => hireEvent(eventId, employeeId, department, 'Ada', 'Lovelace');

describeIf(brokers)('Engine.start() with KAFKA_BROKERS: HR topic in, dead letters, lifecycle topic out', () => {
  jest.setTimeout(60_000);
  let kafka: Kafka;
  let admin: Admin;
  let t: TestEngine | undefined;
  // One partition, so "does not block the partition" is about the very messages after the poison.
  const topics = { ...suiteTopics('engine', 1), KAFKA_CLIENT_ID: 'idlc-test' };

  beforeAll(async () => ({ kafka, admin } = await connectTestKafka(brokers!)));
  afterAll(async () => {
    await t?.close();
    await disconnectTestKafka(admin);
  });

  it('creates the topics, dead-letters poison messages with their error and original headers, and applies the ones after them', async () => {
    t = await openEngine({ KAFKA_BROKERS: brokers!, ...topics }, { start: true });
    const messaging = t.engine.messaging!;
    expect(messaging).toBeDefined();
    await messaging.start();
    expect(messaging.status().state).toBe('running');
    const metadata = await admin.fetchTopicMetadata({ topics: [topics.KAFKA_HR_TOPIC, topics.KAFKA_DLQ_TOPIC, topics.KAFKA_LIFECYCLE_TOPIC] });
    expect(metadata.topics.map((x) => x.partitions.length)).toEqual([1, 1, 1]);

    const badJson = Buffer.from('{"eventId": "x-1", "type": "hire",');
    const invalid = { eventId: 'x-2', type: 'promote', employeeId: 'E2', effectiveDate: 'yesterday' };
    await produce(kafka, topics.KAFKA_HR_TOPIC, [
      { key: 'E1', value: JSON.stringify(hire('h-1', 'E1')), headers: { 'correlation-id': 'corr-1' } },
      { key: 'E9', value: badJson, headers: { 'x-trace': 'trace-bad-json', 'correlation-id': 'corr-2' } },
      { key: 'E2', value: JSON.stringify(invalid), headers: { 'x-trace': 'trace-invalid', 'x-tenant': 'acme' } },
      { key: 'E404', value: JSON.stringify({ eventId: 'c-404', type: 'change', employeeId: 'E404', effectiveDate: '2026-01-05', attributes: { title: 'Boss' } }), headers: { 'x-trace': 'trace-unknown' } },
      { key: 'E2', value: JSON.stringify(hire('h-2', 'E2', 'Sales')) },
      { key: 'E1', value: JSON.stringify({ eventId: 'c-1', type: 'change', employeeId: 'E1', effectiveDate: '2026-01-05', attributes: { department: 'Finance' } }), headers: { 'x-correlation-id': 'corr-6' } },
    ]);
    await waitFor('6 messages processed', () => messaging.status().hr.processed >= 6, 30_000);
    expect(messaging.status().hr).toMatchObject({ processed: 6, applied: 3, deadLettered: 3, retries: 0 });

    // The three poison messages, in order, with the original key, value bytes and headers plus the error.
    const dlq = await readTopic(kafka, topics.KAFKA_DLQ_TOPIC);
    expect(dlq).toHaveLength(3);
    expect(dlq.map((m) => m.key)).toEqual(['E9', 'E2', 'E404']);
    expect(dlq[0].value!.equals(badJson)).toBe(true);
    expect(JSON.parse(dlq[1].value!.toString())).toEqual(invalid);
    expect(dlq[0].headers).toMatchObject({
      'x-trace': 'trace-bad-json',
      'correlation-id': 'corr-2',
      [DLQ_HEADERS.errorCode]: 'invalid_json',
      [DLQ_HEADERS.sourceTopic]: topics.KAFKA_HR_TOPIC,
      [DLQ_HEADERS.sourcePartition]: '0',
      [DLQ_HEADERS.sourceOffset]: '1',
      [DLQ_HEADERS.failedAt]: '2026-01-05T09:00:00.000Z',
    });
    expect(dlq[0].headers[DLQ_HEADERS.error]).toMatch(/^the message value is not JSON: /);
    expect(dlq[1].headers).toMatchObject({ 'x-trace': 'trace-invalid', 'x-tenant': 'acme', [DLQ_HEADERS.errorCode]: 'validation_failed', [DLQ_HEADERS.sourceOffset]: '2' });
    expect(dlq[1].headers[DLQ_HEADERS.error]).toContain('type: type must be one of the following values: hire, change, terminate, rehire');
    expect(dlq[1].headers[DLQ_HEADERS.error]).toContain('effectiveDate: effectiveDate must be an ISO 8601 date or date-time');
    expect(JSON.parse(dlq[1].headers[DLQ_HEADERS.errors]).map((e: any) => e.field).sort()).toEqual(['effectiveDate', 'type']);
    expect(dlq[2].headers).toMatchObject({ 'x-trace': 'trace-unknown', [DLQ_HEADERS.errorCode]: 'unknown_employee', [DLQ_HEADERS.sourceOffset]: '3' });
    expect(dlq[2].headers[DLQ_HEADERS.error]).toBe('c-404: no identity for employee E404');

    // The messages after the poison were applied, with Kafka provenance on the stored events.
    const e1 = await t.engine.commands.findByKey('hr:E1');
    const e2 = await t.engine.commands.findByKey('hr:E2');
    expect((await t.engine.repository.load(e1!)).attributes.department).toBe('Finance');
    expect((await t.engine.repository.load(e2!)).attributes.department).toBe('Sales');
    expect(await t.engine.commands.findByKey('hr:E404')).toBeNull();
    const stored = await allEvents(t.engine);
    const byHrEvent = (id: string) => stored.filter((e) => e.metadata.hrEventId === id);
    expect(byHrEvent('h-1')[0].metadata).toMatchObject({ source: 'hr-kafka', actor: `kafka:${topics.KAFKA_HR_TOPIC}/0@0`, correlationId: 'corr-1', causationId: 'hr:h-1' });
    expect(byHrEvent('h-2')[0].metadata).toMatchObject({ actor: `kafka:${topics.KAFKA_HR_TOPIC}/0@4` });
    expect(byHrEvent('c-1')[0].metadata).toMatchObject({ actor: `kafka:${topics.KAFKA_HR_TOPIC}/0@5`, correlationId: 'corr-6' });
    expect(stored.filter((e) => !['h-1', 'h-2', 'c-1'].includes(String(e.metadata.hrEventId)))).toEqual([]);
    await waitFor('offset 6 committed', async () => {
      const [c] = await admin.fetchOffsets({ groupId: topics.KAFKA_HR_GROUP, topics: [topics.KAFKA_HR_TOPIC] });
      return c.partitions[0].offset === '6';
    }, 10_000);

    // Out: every stored event on the lifecycle topic, keyed by identity, with its headers.
    await waitFor('lifecycle publisher caught up', async () => messaging.publisher.position === (await t!.engine.store.headPosition()), 20_000);
    const out = await readTopic(kafka, topics.KAFKA_LIFECYCLE_TOPIC);
    expect(out.map((m) => m.headers[LIFECYCLE_HEADERS.eventId])).toEqual(stored.map((e) => e.id));
    for (const [i, m] of out.entries()) {
      const e = stored[i];
      expect(m.key).toBe(e.streamId.replace(/^identity-/, ''));
      expect(m.headers).toMatchObject({
        [LIFECYCLE_HEADERS.eventType]: e.type,
        [LIFECYCLE_HEADERS.schemaVersion]: String(e.version),
        [LIFECYCLE_HEADERS.correlationId]: e.metadata.correlationId,
      });
      expect(JSON.parse(m.value!.toString())).toEqual({ ...e, recordedAt: e.recordedAt.toISOString() });
    }
    const row = await t.engine.readDb.get<{ position: number }>('SELECT position FROM outbox_checkpoints WHERE name = ?', [`kafka:${topics.KAFKA_LIFECYCLE_TOPIC}`]);
    expect(Number(row!.position)).toBe(stored[stored.length - 1].position);

    await t.close();
    t = undefined;
    expect(messaging.status().state).toBe('stopped');
  });

  it('stays off without KAFKA_BROKERS and in an api-only process', async () => {
    const off = await openEngine({}, { start: true });
    const api = await openEngine({ KAFKA_BROKERS: brokers!, WORKER_MODE: 'api', ...topics }, { start: true });
    try {
      expect(off.engine.config.kafka).toBeUndefined();
      expect(off.engine.messaging).toBeUndefined();
      expect(api.engine.config.kafka).toMatchObject({ brokers: brokers!.split(','), hrTopic: topics.KAFKA_HR_TOPIC });
      expect(api.engine.messaging).toBeUndefined();
    } finally {
      await off.close();
      await api.close();
    }
  });
});
