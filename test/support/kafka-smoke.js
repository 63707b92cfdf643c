#!/usr/bin/env node
/*
 * Kafka smoke test: proves kafkajs talks to the broker named by KAFKA_BROKERS.
 *
 *   eval "$(bash scripts/kafka/broker.sh env)" && KAFKA_BROKERS=$KAFKA_BROKERS node test/support/kafka-smoke.js
 *   # or: KAFKA_BROKERS=127.0.0.1:9092 node test/support/kafka-smoke.js
 *
 * Creates a fresh 3-partition topic with the admin client, produces 100 keyed messages with an
 * idempotent producer (acks=all), consumes them with a new consumer group, checks that all 100 arrive
 * exactly once and in order per key, deletes the topic, and prints one JSON line on stdout.
 * Exit code: 0 ok, 1 check failed / error, 2 misconfigured. kafkajs' own logs go to stderr.
 */
'use strict';

const { Kafka, logLevel, Partitioners } = require('kafkajs');

const MESSAGES = 100;
const KEYS = 10;
const PARTITIONS = 3;
const CONSUME_TIMEOUT_MS = Number(process.env.KAFKA_SMOKE_TIMEOUT_MS || 30000);

function emit(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// kafkajs logger -> stderr (stdout carries only the result line).
const stderrLogCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(
    `[kafkajs ${label}] ${namespace ? namespace + ': ' : ''}${message} ${JSON.stringify(extra)}\n`,
  );
};

async function main() {
  const raw = process.env.KAFKA_BROKERS;
  if (!raw || !raw.trim()) {
    emit({ ok: false, error: 'KAFKA_BROKERS is not set (try: eval "$(bash scripts/kafka/broker.sh env)")' });
    return 2;
  }
  const brokers = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const runId = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const topic = `idlc-smoke-${runId}`;
  const groupId = `idlc-smoke-group-${runId}`;
  const t0 = Date.now();
  const timings = {};
  const mark = (name, since) => {
    timings[name] = Date.now() - since;
    return Date.now();
  };

  const kafka = new Kafka({
    clientId: 'idlc-kafka-smoke',
    brokers,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
  });

  let topicCreated = false;
  let cluster;
  try {
    let t = Date.now();
    await admin.connect();
    cluster = await admin.describeCluster();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    });
    topicCreated = true;
    t = mark('createTopicMs', t);

    await producer.connect();
    const messages = [];
    for (let seq = 0; seq < MESSAGES; seq++) {
      messages.push({
        key: `key-${seq % KEYS}`,
        value: JSON.stringify({ seq, at: new Date().toISOString() }),
        headers: { 'x-smoke-run': runId },
      });
    }
    const sent = await producer.send({ topic, acks: -1, messages });
    const producedPartitions = sent.length; // one RecordMetadata per partition written
    t = mark('produceMs', t);

    // Consume with a fresh group from the beginning.
    const seen = new Map(); // seq -> count
    const lastSeqPerKey = new Map();
    const orderViolations = [];
    const partitionsSeen = new Set();
    let badHeader = 0;
    let resolveDone;
    const done = new Promise((resolve) => (resolveDone = resolve));

    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ partition, message }) => {
        partitionsSeen.add(partition);
        if (String(message.headers['x-smoke-run']) !== runId) badHeader++;
        const { seq } = JSON.parse(message.value.toString());
        const key = message.key.toString();
        seen.set(seq, (seen.get(seq) || 0) + 1);
        const prev = lastSeqPerKey.get(key);
        if (prev !== undefined && seq <= prev) orderViolations.push({ key, prev, seq });
        lastSeqPerKey.set(key, seq);
        if (seen.size >= MESSAGES) resolveDone(true);
      },
    });

    const timer = setTimeout(() => resolveDone(false), CONSUME_TIMEOUT_MS);
    const complete = await done;
    clearTimeout(timer);
    mark('consumeMs', t);

    const missing = [];
    for (let seq = 0; seq < MESSAGES; seq++) if (!seen.has(seq)) missing.push(seq);
    const duplicates = [...seen.entries()].filter(([, c]) => c > 1).map(([s]) => s);
    const ok =
      complete && missing.length === 0 && duplicates.length === 0 && orderViolations.length === 0 && badHeader === 0;

    emit({
      ok,
      brokers,
      clusterId: cluster.clusterId,
      controller: cluster.controller,
      kafkajs: require('kafkajs/package.json').version,
      topic,
      groupId,
      produced: MESSAGES,
      producedPartitions,
      consumed: [...seen.values()].reduce((a, b) => a + b, 0),
      unique: seen.size,
      partitionsSeen: [...partitionsSeen].sort(),
      missing: missing.slice(0, 10),
      duplicates: duplicates.slice(0, 10),
      orderViolations: orderViolations.slice(0, 5),
      timedOut: !complete,
      timings: { ...timings, totalMs: Date.now() - t0 },
    });
    return ok ? 0 : 1;
  } catch (err) {
    emit({
      ok: false,
      brokers,
      topic,
      error: `${err && err.name}: ${err && err.message}`,
      timings: { ...timings, totalMs: Date.now() - t0 },
    });
    return 1;
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    if (topicCreated) await admin.deleteTopics({ topics: [topic], timeout: 10000 }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    emit({ ok: false, error: String(err && err.stack ? err.stack : err) });
    process.exit(1);
  },
);
