import { Admin, Kafka } from 'kafkajs';
import { startTestApp, TestApp } from '../support/app';
import { describeIf, serviceEnv } from '../support/services';
import { committed, connectTestKafka, disconnectTestKafka, endOffsets, hireEvent, produce, suiteTopics, waitFor } from './support/kafka-test';

const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');

const hire = (employeeId: string) => hireEvent(`lag-${employeeId}`, employeeId);

/** The consumer-lag samples of one /metrics scrape: per partition, and the topic total. */
async function scrapeLag(t: TestApp, topic: string): Promise<{ partitions: Record<string, number>; total: number | undefined }> {
  const r = await t.get('/metrics');
  expect(r.status).toBe(200);
  const partitions: Record<string, number> = {};
  let total: number | undefined;
  for (const line of String(r.body).split('\n')) {
    const m = /^idlc_kafka_consumer_lag\{topic="([^"]+)",partition="(\d+)"\} (\d+)$/.exec(line);
    if (m && m[1] === topic) partitions[m[2]] = Number(m[3]);
    const s = /^idlc_kafka_consumer_topic_lag\{topic="([^"]+)"\} (\d+)$/.exec(line);
    if (s && s[1] === topic) total = Number(s[2]);
  }
  return { partitions, total };
}

describeIf(brokers)('idlc_kafka_consumer_lag on /metrics, against the broker', () => {
  jest.setTimeout(60_000);
  let kafka: Kafka;
  let admin: Admin;
  let t: TestApp | undefined;
  const topics = suiteTopics('lag', 3);
  const hrTopic = topics.KAFKA_HR_TOPIC;

  beforeAll(async () => ({ kafka, admin } = await connectTestKafka(brokers!)));
  afterAll(async () => {
    await t?.close();
    await disconnectTestKafka(admin);
  });

  /** Scrapes until the reading (cached up to 5 s) shows `want`; returns the last one on timeout. */
  async function lagBecomes(want: Record<string, number>, timeoutMs = 20_000) {
    let last = await scrapeLag(t!, hrTopic);
    const wantTotal = Object.values(want).reduce((a, b) => a + b, 0);
    const until = Date.now() + timeoutMs;
    while ((JSON.stringify(last.partitions) !== JSON.stringify(want) || last.total !== wantTotal) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      last = await scrapeLag(t!, hrTopic);
    }
    expect(last).toEqual({ partitions: want, total: wantTotal });
  }

  it('reports messages produced while the consumer is stopped per partition, and 0 once it caught up again', async () => {
    t = await startTestApp({ KAFKA_BROKERS: brokers!, ...topics });
    const messaging = t.engine.messaging!;
    await messaging.start();
    expect(messaging.status().state).toBe('running');
    // A fresh group on empty partitions: nothing to consume.
    await lagBecomes({ '0': 0, '1': 0, '2': 0 });

    // One message per partition consumed and committed first, so the lag then counts from real commits.
    await produce(kafka, hrTopic, [0, 1, 2].map((p) => ({ key: `W${p}`, value: JSON.stringify(hire(`W${p}`)), partition: p })));
    await waitFor('the first messages to be applied', () => messaging.status().hr.applied === 3, 30_000);
    await waitFor('their offsets to be committed', async () => [...(await committed(admin, topics.KAFKA_HR_GROUP, hrTopic)).values()].every((o) => o === 1), 30_000);
    await lagBecomes({ '0': 0, '1': 0, '2': 0 });

    // The consumer stops; 7 messages arrive unevenly: 4 on partition 0, none on 1, 3 on 2.
    await messaging.hrConsumer.stop();
    const backlog = [
      ...['A1', 'A2', 'A3', 'A4'].map((e) => ({ key: e, value: JSON.stringify(hire(e)), partition: 0 })),
      ...['C1', 'C2', 'C3'].map((e) => ({ key: e, value: JSON.stringify(hire(e)), partition: 2 })),
    ];
    await produce(kafka, hrTopic, backlog);
    await lagBecomes({ '0': 4, '1': 0, '2': 3 });
    // The same figures the broker gives anyone who asks: end offset minus committed offset.
    const ends = await endOffsets(admin, hrTopic);
    const commits = await committed(admin, topics.KAFKA_HR_GROUP, hrTopic);
    expect([0, 1, 2].map((p) => ends.get(p)! - commits.get(p)!)).toEqual([4, 0, 3]);
    expect(messaging.status().hr.applied).toBe(3);

    // Consuming again: the backlog is applied and the lag returns to 0 on every partition.
    await messaging.hrConsumer.start();
    await lagBecomes({ '0': 0, '1': 0, '2': 0 }, 30_000);
    expect(messaging.status().hr.applied).toBe(10);
    for (const e of ['A1', 'A4', 'C3']) expect(await t.engine.commands.findByKey(`hr:${e}`)).toBeDefined();
  });
});
