import type { AppendResult, EventStore } from '@idlc/event-store';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Engine } from '../engine';

type AppendListener = (events: { type: string }[]) => void;
const LISTENERS = Symbol('idlc.appendListeners');

/**
 * Calls `listener` with the events of every append that stored something new, whoever wrote it
 * (identity commands, SCIM groups, sagas, Kafka), one stream at a time or several at once. The
 * store is wrapped once; each app adds a listener.
 */
export function onAppend(store: EventStore, listener: AppendListener): () => void {
  const s = store as EventStore & { [LISTENERS]?: Set<AppendListener> };
  if (!s[LISTENERS]) {
    const listeners = new Set<AppendListener>();
    s[LISTENERS] = listeners;
    // A duplicate stored nothing new.
    const stored = (result: AppendResult, events: { type: string }[]) => {
      if (!result.duplicate) for (const l of listeners) l(events);
    };
    const append = store.append.bind(store);
    s.append = async (streamId, events, expected, options) => {
      const result = await append(streamId, events, expected, options);
      stored(result, events);
      return result;
    };
    const appendMany = store.appendMany.bind(store);
    s.appendMany = async (requests) => {
      const results = await appendMany(requests);
      results.forEach((r, i) => r.status === 'fulfilled' && stored(r.value, requests[i].events));
      return results;
    };
  }
  s[LISTENERS]!.add(listener);
  return () => s[LISTENERS]!.delete(listener);
}

/**
 * Counters that only ever grow, read from the engine at scrape time: one total, or one per label
 * set (`read` then gives each label set's total so far).
 */
function counterFrom(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined | Iterable<{ labels: Record<string, string>; value: number }>,
  labelNames: string[] = [],
): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const r = read();
      if (r === undefined) return;
      for (const { labels, value } of typeof r === 'number' ? [{ labels: {}, value: r }] : r) {
        const k = JSON.stringify(labels);
        const before = seen.get(k) ?? 0;
        if (value > before) this.inc(labels, value - before);
        seen.set(k, Math.max(before, value));
      }
    },
  });
}

/**
 * The engine's metrics (event store, projections, sagas, Kafka), named idlc_*, into `registry`:
 * served by the API's /metrics and by the worker's. Returns what stops the append listener.
 */
export function registerEngineMetrics(registry: Registry, engine: Engine): () => void {
  const appended = new Counter({
    name: 'idlc_events_appended_total',
    help: 'Events appended to the event store by this process, by event type',
    labelNames: ['type'],
    registers: [registry],
  });
  const stopAppends = onAppend(engine.store, (events) => {
    for (const e of events) appended.inc({ type: e.type });
  });

  // Only the API process serves logins; the worker's tally stays empty.
  counterFrom(
    registry,
    'idlc_sso_logins_total',
    'SSO logins by IdP and outcome: provisioned, linked, recorded, within_interval (answered, nothing appended), or the refusal type',
    () => engine.ssoLogins.entries().map(({ idp, outcome, n }) => ({ labels: { idp, outcome }, value: n })),
    ['idp', 'outcome'],
  );
  new Gauge({
    name: 'idlc_event_store_head_position',
    help: 'Global position of the newest event in the store',
    registers: [registry],
    async collect() {
      this.set(await engine.store.headPosition());
    },
  });
  new Gauge({
    name: 'idlc_projection_position',
    help: 'Checkpoint (global position) of each projection',
    labelNames: ['projection'],
    registers: [registry],
    collect() {
      for (const p of engine.projections.status()) this.set({ projection: p.name }, p.position);
    },
  });
  // Both lag gauges come from one read per scrape so they agree with each other.
  let lagRead: Promise<{ events: number; seconds: number }> | undefined;
  const readLag = () =>
    (lagRead ??= (async () => {
      try {
        const head = await engine.store.headPosition();
        const slowest = Math.min(...engine.projections.status().map((p) => p.position));
        if (head <= slowest) return { events: 0, seconds: 0 };
        // The oldest event no projection has applied yet: its age is how stale the slowest read model is.
        const [oldest] = await engine.store.readAll({ fromPosition: slowest, maxCount: 1 });
        const seconds = oldest ? Math.max(0, (engine.clock.now().getTime() - oldest.recordedAt.getTime()) / 1000) : 0;
        return { events: head - slowest, seconds };
      } finally {
        setImmediate(() => (lagRead = undefined));
      }
    })());
  new Gauge({
    name: 'idlc_projection_lag_events',
    help: 'Events between the store head and the slowest projection',
    registers: [registry],
    async collect() {
      this.set((await readLag()).events);
    },
  });
  new Gauge({
    name: 'idlc_projection_lag_seconds',
    help: 'Age of the oldest event the slowest projection has not applied (0 when caught up)',
    registers: [registry],
    async collect() {
      this.set((await readLag()).seconds);
    },
  });

  counterFrom(registry, 'idlc_saga_deadlines_due_total', 'Saga deadlines claimed because they were due', () => engine.scheduler.due);
  counterFrom(registry, 'idlc_saga_deadlines_fired_total', 'Saga deadlines that appended their action', () => engine.scheduler.fired);
  if (engine.config.kafka) registerKafkaMetrics(registry, engine);
  return stopAppends;
}

/**
 * Kafka (only when configured). Messaging runs where the engine is started (WORKER_MODE all or
 * worker), so an api-only process leaves these without samples rather than reporting made-up zeros.
 */
function registerKafkaMetrics(registry: Registry, engine: Engine): void {
  new Gauge({
    name: 'idlc_kafka_up',
    help: '1 when the Kafka consumer and publisher are running, 0 otherwise; absent when messaging is off',
    registers: [registry],
    collect() {
      const s = engine.messaging?.status();
      if (s) this.set(s.state === 'running' ? 1 : 0);
    },
  });
  for (const k of ['processed', 'applied', 'unchanged', 'duplicate', 'deadLettered', 'retries'] as const) {
    const snake = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    counterFrom(registry, `idlc_kafka_hr_${snake}_total`, `HR Kafka consumer: ${k}`, () => engine.messaging?.status().hr[k]);
  }
  new Gauge({
    name: 'idlc_kafka_publisher_lag_events',
    help: 'Events appended but not yet published to the lifecycle topic',
    registers: [registry],
    async collect() {
      const s = engine.messaging?.status();
      if (s) this.set(Math.max(0, (await engine.store.headPosition()) - s.lifecycle.position));
    },
  });
  // Both consumer-lag gauges come from one broker reading (cached briefly, bounded wait: see ConsumerLagMonitor).
  let lagRead: ReturnType<NonNullable<Engine['messaging']>['consumerLag']['read']> | undefined;
  const readConsumerLag = () =>
    (lagRead ??= (async () => {
      try {
        return await engine.messaging?.consumerLag.read();
      } finally {
        setImmediate(() => (lagRead = undefined));
      }
    })());
  new Gauge({
    name: 'idlc_kafka_consumer_lag',
    help: "HR consumer group: messages between its committed offset and the broker's end offset, by partition; absent when the broker did not answer",
    labelNames: ['topic', 'partition'],
    registers: [registry],
    async collect() {
      this.reset();
      const lag = await readConsumerLag();
      for (const p of lag?.partitions ?? []) this.set({ topic: lag!.topic, partition: String(p.partition) }, p.lag);
    },
  });
  new Gauge({
    name: 'idlc_kafka_consumer_topic_lag',
    help: 'HR consumer group: idlc_kafka_consumer_lag summed over the partitions of the topic',
    labelNames: ['topic'],
    registers: [registry],
    async collect() {
      this.reset();
      const lag = await readConsumerLag();
      if (lag) this.set({ topic: lag.topic }, lag.total);
    },
  });
}
