import { ManualClock } from '@idlc/domain';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../config/config';
import { Engine } from '../engine';

const BIRTHRIGHT = resolve(__dirname, '../../../../config/birthright.yaml');

describe('Kafka configuration', () => {
  it('is off unless KAFKA_BROKERS is set, with the documented defaults when it is', () => {
    expect(loadConfig({}).kafka).toBeUndefined();
    expect(loadConfig({ KAFKA_BROKERS: '' }).kafka).toBeUndefined();
    expect(loadConfig({ KAFKA_BROKERS: 'k1:9092, k2:9093' }).kafka).toEqual({
      brokers: ['k1:9092', 'k2:9093'],
      clientId: 'idlc',
      hrTopic: 'idlc.hr-events',
      hrGroup: 'idlc-hr-feed',
      dlqTopic: 'idlc.hr-events.dlq',
      lifecycleTopic: 'idlc.lifecycle-events',
      topicPartitions: 3,
      topicReplicationFactor: 1,
    });
  });

  it('names every bad Kafka variable', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ KAFKA_BROKERS: 'k1:9092,nope', KAFKA_HR_TOPIC: 'bad topic', KAFKA_HR_GROUP: 'a b', KAFKA_TOPIC_PARTITIONS: '0', KAFKA_DLQ_TOPIC: 'idlc.lifecycle-events' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toEqual([
      "KAFKA_BROKERS: 'nope' must look like host:port",
      'KAFKA_HR_TOPIC="bad topic": must be 1-249 characters: letters, digits, . _ -',
      'KAFKA_HR_GROUP="a b": must be 1-255 printable characters without spaces',
      'KAFKA_TOPIC_PARTITIONS="0": must be a whole number from 1 to 10000',
      'KAFKA_HR_TOPIC, KAFKA_DLQ_TOPIC and KAFKA_LIFECYCLE_TOPIC must be three different topics',
    ]);
  });
});

describe('Messaging when the broker is unreachable', () => {
  let dir: string;
  let server: Server;
  let port: number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-messaging-'));
    // A port that accepts and immediately drops connections: nothing there speaks Kafka.
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the engine working, retries in the background, and stops promptly on close', async () => {
    const config = loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: BIRTHRIGHT, LOG_LEVEL: 'silent', KAFKA_BROKERS: `127.0.0.1:${port}` });
    const engine = await Engine.open({ config, clock: new ManualClock() });
    engine.start();
    const messaging = engine.messaging!;
    const tStart = Date.now();
    const started = messaging.start();
    for (let i = 0; i < 200 && !messaging.status().lastError; i++) await new Promise((r) => setTimeout(r, 50));
    expect(Date.now() - tStart).toBeLessThan(5000);
    expect(messaging.status().state).toBe('starting');
    expect(messaging.status().lastError).toMatch(/KafkaJS/);
    // Writes still work without the broker.
    const out = await engine.commands.execute('id-1', [{ kind: 'Hire', employeeId: 'E1', effectiveAt: '2026-01-05T00:00:00.000Z', attributes: { department: 'Sales' } }], {
      metadata: { source: 'admin' },
    });
    expect(out.events.length).toBeGreaterThan(0);
    const t0 = Date.now();
    await engine.close();
    await started;
    expect(messaging.status().state).toBe('stopped');
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
