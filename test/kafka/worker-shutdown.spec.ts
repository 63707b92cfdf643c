import { Engine, loadConfig } from '@idlc/engine';
import { Admin, Kafka } from 'kafkajs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequest, spawnBuilt, Spawned, WORKER_MAIN } from '../support/built';
import { describeIf, serviceEnv } from '../support/services';
import { allEvents, applyDirectly, BIRTHRIGHT, committed, connectTestKafka, createTopics, disconnectTestKafka, hireEvent, openEngine, produce, suiteTopics, waitFor } from './support/kafka-test';

const brokers = serviceEnv('Kafka', 'KAFKA_BROKERS');

const MESSAGES = 60;
const HIRES_PER_MESSAGE = 40;
const PARTITIONS = 3;

const hire = (employeeId: string) => hireEvent(`${employeeId}-hire`, employeeId, 'Engineering', 'Given');

/** Message j goes to partition j % 3, so on a fresh topic its offset there is floor(j / 3). */
const messageHires = (j: number) => Array.from({ length: HIRES_PER_MESSAGE }, (_, i) => hire(`M${String(j).padStart(3, '0')}E${String(i).padStart(3, '0')}`));

/** Samples of a Prometheus text page, `name{labels}` -> value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const r = await httpRequest(`${url}/metrics`, { agent: false });
  if (!('status' in r) || r.status !== 200) throw new Error(`worker /metrics: ${JSON.stringify(r)}`);
  const samples = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return samples;
}

describeIf(brokers)('the worker process (built) on SIGTERM while consuming the HR topic', () => {
  jest.setTimeout(120_000);
  let kafka: Kafka;
  let admin: Admin;
  let dir: string;
  const spawned: Spawned[] = [];
  const topics = suiteTopics('worker', PARTITIONS);

  beforeAll(async () => {
    ({ kafka, admin } = await connectTestKafka(brokers!));
    dir = mkdtempSync(join(tmpdir(), 'idlc-worker-stop-'));
  });
  afterAll(async () => {
    for (const s of spawned) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await disconnectTestKafka(admin);
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes the message in hand, commits it, exits 0; a restart consumes the rest exactly once and /metrics shows the lag fall to 0', async () => {
    // Events one hire appends when nothing interrupts it.
    const ref = await openEngine();
    let perHire: number;
    try {
      await applyDirectly(ref.engine, [hire('REF')]);
      perHire = (await allEvents(ref.engine)).length;
    } finally {
      await ref.close();
    }

    await createTopics(admin, [topics.KAFKA_HR_TOPIC], PARTITIONS);
    await produce(
      kafka,
      topics.KAFKA_HR_TOPIC,
      Array.from({ length: MESSAGES }, (_, j) => ({ key: `batch-${j}`, value: JSON.stringify({ events: messageHires(j) }), partition: j % PARTITIONS })),
    );
    const env = { WORKER_MODE: 'worker', WORKER_HEALTH_PORT: '0', DATA_DIR: dir, EVENT_STORE: 'sqlite', BIRTHRIGHT_POLICY_FILE: BIRTHRIGHT, LOG_LEVEL: 'warn', KAFKA_BROKERS: brokers!, ...topics };
    const worker = await spawnBuilt(WORKER_MAIN, env);
    spawned.push(worker);

    // The worker's own /metrics: the backlog on every partition, then progress.
    let sawLag = false;
    await waitFor(
      'a quarter of the messages to be processed',
      async () => {
        const s = await scrape(worker.url);
        const parts = [0, 1, 2].map((p) => s.get(`idlc_kafka_consumer_lag{topic="${topics.KAFKA_HR_TOPIC}",partition="${p}"}`));
        if (parts.every((v) => v !== undefined && v > 0)) sawLag = true;
        return (s.get('idlc_kafka_hr_processed_total') ?? 0) >= MESSAGES / 4;
      },
      60_000,
      20,
    );
    expect(sawLag).toBe(true);
    const signalled = Date.now();
    worker.child.kill('SIGTERM');
    const code = await Promise.race([worker.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000).unref())]);
    expect(code).toBe(0);
    const stopMs = Date.now() - signalled;

    // What the stopped worker left: every message below the committed offsets applied whole, none above.
    const commits = await committed(admin, topics.KAFKA_HR_GROUP, topics.KAFKA_HR_TOPIC);
    const engine = await Engine.open({ config: loadConfig({ ...env, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }) });
    let applied: number;
    try {
      const counts = new Map<string, number>();
      for (const e of await allEvents(engine)) counts.set(e.metadata.hrEventId as string, (counts.get(e.metadata.hrEventId as string) ?? 0) + 1);
      const state = Array.from({ length: MESSAGES }, (_, j) => {
        const n = messageHires(j).map((h) => counts.get(h.eventId) ?? 0);
        return n.every((c) => c === perHire) ? 'applied' : n.every((c) => c === 0) ? 'absent' : `partial ${JSON.stringify(n)}`;
      });
      const expected = state.map((_, j) => (Math.floor(j / PARTITIONS) < (commits.get(j % PARTITIONS) ?? 0) ? 'applied' : 'absent'));
      expect(state).toEqual(expected);
      applied = state.filter((s) => s === 'applied').length;
      expect(applied).toBeGreaterThanOrEqual(MESSAGES / 4);
      expect(applied).toBeLessThan(MESSAGES);
      // Checkpoints flushed on the way out.
      const head = await engine.store.headPosition();
      expect(engine.projections.status().every((p) => p.position === head)).toBe(true);
    } finally {
      await engine.close();
    }

    // Restarted: it resumes at the commits, consumes the rest and reports no lag.
    const again = await spawnBuilt(WORKER_MAIN, env);
    spawned.push(again);
    let last = new Map<string, number>();
    await waitFor(
      'the lag to reach 0 on every partition',
      async () => {
        last = await scrape(again.url);
        const parts = [0, 1, 2].map((p) => last.get(`idlc_kafka_consumer_lag{topic="${topics.KAFKA_HR_TOPIC}",partition="${p}"}`));
        return parts.every((v) => v === 0) && last.get(`idlc_kafka_consumer_topic_lag{topic="${topics.KAFKA_HR_TOPIC}"}`) === 0;
      },
      60_000,
      250,
    );
    // Nothing was redelivered: the restart processed exactly the messages the first run had not committed.
    expect(last.get('idlc_kafka_hr_processed_total')).toBe(MESSAGES - applied);
    expect(last.get('idlc_kafka_hr_duplicate_total')).toBe(0);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);

    const after = await Engine.open({ config: loadConfig({ ...env, LOG_LEVEL: 'silent', KAFKA_BROKERS: '' }) });
    try {
      const counts = new Map<string, number>();
      for (const e of await allEvents(after)) counts.set(e.metadata.hrEventId as string, (counts.get(e.metadata.hrEventId as string) ?? 0) + 1);
      expect(counts.size).toBe(MESSAGES * HIRES_PER_MESSAGE);
      expect([...counts.values()].filter((n) => n !== perHire)).toEqual([]);
    } finally {
      await after.close();
    }
    // eslint-disable-next-line no-console
    console.log(`[worker sigterm] exit 0 ${stopMs} ms after SIGTERM with ${applied}/${MESSAGES} messages committed; the restart consumed the other ${MESSAGES - applied}`);
  });
});
