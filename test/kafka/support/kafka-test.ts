import { ManualClock } from '@idlc/domain';
import { createKafka, Engine, HrFeedService, loadConfig, silentLogger } from '@idlc/engine';
import type { StoredEvent } from '@idlc/event-store';
import { Admin, IHeaders, Kafka, Partitioners } from 'kafkajs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIRTHRIGHT = resolve(__dirname, '../../../config/birthright.yaml');
export const START = '2026-01-05T09:00:00.000Z';

/** Unique per test run, so reruns against one broker never see each other's topics or groups. */
export const RUN_ID = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
export const uniqueName = (what: string) => `idlc-test.${what}.${RUN_ID}`;

export function testKafka(brokers: string): Kafka {
  return createKafka({ brokers: brokers.split(','), clientId: `idlc-test-${RUN_ID}` }, silentLogger);
}

/** Deletes the topics and consumer groups this test file created (their names carry RUN_ID). */
export async function cleanUp(admin: Admin): Promise<void> {
  const topics = (await admin.listTopics()).filter((t) => t.includes(RUN_ID));
  if (topics.length) await admin.deleteTopics({ topics, timeout: 10000 }).catch(() => undefined);
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.includes(RUN_ID));
  if (groups.length) await admin.deleteGroups(groups).catch(() => undefined);
}

/** A suite's client and connected admin for the test broker. */
export async function connectTestKafka(brokers: string): Promise<{ kafka: Kafka; admin: Admin }> {
  const kafka = testKafka(brokers);
  const admin = kafka.admin();
  await admin.connect();
  return { kafka, admin };
}

/** Deletes what this run created on the broker and disconnects the admin (a no-op if it never connected). */
export async function disconnectTestKafka(admin: Admin | undefined): Promise<void> {
  if (!admin) return;
  await cleanUp(admin);
  await admin.disconnect();
}

export async function createTopics(admin: Admin, topics: string[], numPartitions = 3): Promise<void> {
  await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor: 1 })) });
}

export interface TestEngine {
  engine: Engine;
  dir: string;
  close(): Promise<void>;
}

/** A real engine over a fresh SQLite file with a manual clock; not started unless asked. */
export async function openEngine(env: Record<string, string> = {}, opts: { start?: boolean; dir?: string } = {}): Promise<TestEngine> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'idlc-kafka-'));
  const config = loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: BIRTHRIGHT, LOG_LEVEL: 'silent', ...env });
  const engine = await Engine.open({ config, clock: new ManualClock(START) });
  if (opts.start) engine.start();
  return {
    engine,
    dir,
    async close() {
      await engine.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- HR events -------------------------------------------------------------------------------

/** Deterministic pseudo-random numbers (mulberry32): the same data set on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEPARTMENTS = ['Engineering', 'Sales', 'Finance', 'Marketing', 'Support'];
const TITLES = ['Engineer', 'Engineering Manager', 'Analyst', 'Director of Sales', 'Associate'];
const LOCATIONS = ['London', 'Paris', 'REMOTE-DE', 'Berlin'];

export interface HrEvent {
  eventId: string;
  type: 'hire' | 'change';
  employeeId: string;
  effectiveDate: string;
  attributes: Record<string, string>;
}

/** A hire effective 2026-01-05 into Engineering (or `department`), as the HR feed sends it. */
export function hireEvent(eventId: string, employeeId: string, department = 'Engineering', givenName = 'Ada', familyName = employeeId): HrEvent {
  return {
    eventId,
    type: 'hire',
    employeeId,
    effectiveDate: '2026-01-05',
    attributes: { givenName, familyName, email: `${employeeId.toLowerCase()}@example.com`, department, title: 'Engineer', employmentType: 'employee', location: 'London' },
  };
}

/** A suite's own HR, dead-letter and lifecycle topics and consumer group, as engine settings. */
export function suiteTopics(prefix: string, partitions: number) {
  return {
    KAFKA_HR_TOPIC: uniqueName(`${prefix}-hr`),
    KAFKA_DLQ_TOPIC: uniqueName(`${prefix}-hr-dlq`),
    KAFKA_LIFECYCLE_TOPIC: uniqueName(`${prefix}-lifecycle`),
    KAFKA_HR_GROUP: uniqueName(`${prefix}-hr-group`),
    KAFKA_TOPIC_PARTITIONS: String(partitions),
  };
}

export interface HrDataSet {
  events: HrEvent[];
  /** Attributes each employee must end up with. */
  finalAttributes: Map<string, Record<string, string>>;
}

/**
 * `employees` hires and `changesPerEmployee` changes each, randomly interleaved (an employee's hire
 * always comes first). Every change moves department and title, so every HR event appends events.
 */
export function hrDataSet(prefix: string, employees: number, changesPerEmployee: number, seed = 7): HrDataSet {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const slots: number[] = [];
  for (let i = 0; i < employees; i++) for (let k = 0; k <= changesPerEmployee; k++) slots.push(i);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  const current = new Map<string, Record<string, string>>();
  const events: HrEvent[] = [];
  const seq = new Map<number, number>();
  for (const i of slots) {
    const employeeId = `${prefix}-E${String(i).padStart(5, '0')}`;
    const n = seq.get(i) ?? 0;
    seq.set(i, n + 1);
    const eventId = `${prefix}-${employeeId}-${n}`;
    const now = current.get(employeeId);
    if (!now) {
      const attributes = {
        givenName: `Given${i}`,
        familyName: `Family${i}`,
        email: `${employeeId.toLowerCase()}@example.com`,
        department: pick(DEPARTMENTS),
        title: pick(TITLES),
        location: pick(LOCATIONS),
        employmentType: rnd() < 0.8 ? 'employee' : 'contractor',
      };
      current.set(employeeId, { ...attributes });
      events.push({ eventId, type: 'hire', employeeId, effectiveDate: '2026-01-05', attributes });
    } else {
      const department = pick(DEPARTMENTS.filter((d) => d !== now.department));
      const title = pick(TITLES.filter((t) => t !== now.title));
      const attributes: Record<string, string> = { department, title };
      if (rnd() < 0.3) attributes.location = pick(LOCATIONS);
      Object.assign(now, attributes);
      events.push({ eventId, type: 'change', employeeId, effectiveDate: '2026-01-05', attributes });
    }
  }
  return { events, finalAttributes: current };
}

export const hrMessage = (e: HrEvent, headers: IHeaders = {}) => ({ key: e.employeeId, value: JSON.stringify(e), headers });

/** Produces messages in order (acks from all replicas), in chunks to stay under the request limit. */
export async function produce(kafka: Kafka, topic: string, messages: { key: string | null; value: string | Buffer | null; headers?: IHeaders; partition?: number }[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 2000) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 2000) });
  } finally {
    await producer.disconnect();
  }
}

/** Applies HR events straight through the service (no Kafka): the reference outcome. */
export async function applyDirectly(engine: Engine, events: HrEvent[]): Promise<void> {
  const feed = new HrFeedService(engine.commands);
  for (const e of events) {
    const r = await feed.apply(e as any, { source: 'hr-webhook', actor: 'reference', correlationId: 'reference' });
    if (r.status !== 'applied') throw new Error(`reference apply of ${e.eventId}: ${r.status} ${JSON.stringify(r.error)}`);
  }
}

/** Every stored event, in global order. */
export async function allEvents(engine: Engine): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (let from = 0; ; ) {
    const batch = await engine.store.readAll({ fromPosition: from, maxCount: 5000 });
    if (!batch.length) return out;
    out.push(...batch);
    from = batch[batch.length - 1].position;
  }
}

/**
 * Each employee's history as "type<hrEventId>" entries, in stream order: equal across two stores
 * exactly when every HR event was applied once, in order, with the same effects.
 */
export async function historiesByEmployee(engine: Engine): Promise<Map<string, string[]>> {
  const byStream = new Map<string, string[]>();
  for (const e of await allEvents(engine)) {
    const list = byStream.get(e.streamId) ?? [];
    list.push(`${e.type}<${String(e.metadata.hrEventId ?? '')}>`);
    byStream.set(e.streamId, list);
  }
  const out = new Map<string, string[]>();
  for (const [streamId, list] of byStream) {
    const hired = (await engine.store.readStream(streamId, { maxCount: 1 }))[0];
    out.set(String((hired.data as any).employeeId), list);
  }
  return out;
}

// ---- reading topics --------------------------------------------------------------------------

export interface ReadMessage {
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

const textHeaders = (h: IHeaders | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : v)]));

/** Reads a whole topic, as it is when called, with a fresh consumer group; messages in partition order. */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 30000): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const out: ReadMessage[] = [];
  const next = new Map<number, number>();
  const done = () => [...ends].every(([p, high]) => (next.get(p) ?? 0) >= high);
  if (done()) return out;
  const consumer = kafka.consumer({ groupId: `idlc-test-reader-${RUN_ID}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolveP, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic}: timed out with ${out.length} messages`)), timeoutMs);
      void consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            out.push({ partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value, headers: textHeaders(m.headers) });
            next.set(batch.partition, Number(m.offset) + 1);
          }
          if (done()) {
            clearTimeout(timer);
            resolveP();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Polls until cond() holds. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60000, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Committed offsets of a group, per partition. */
export async function committed(admin: Admin, groupId: string, topic: string): Promise<Map<number, number>> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(t.partitions.map((p) => [p.partition, Number(p.offset)]));
}

export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
}
