import type { Clock } from '@idlc/domain';
import { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Partitioners, Producer } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { FieldError } from '../common/validation';
import { DuplicateKeyError } from '../identity/identity-commands';
import { HrEventDto } from '../hr-feed/hr-event.dto';
import { HrEventResult, HrFeedService, parseHrPayload } from '../hr-feed/hr-feed.service';
import { backoff, headerText, MessagingLogger, silentLogger, sleep } from './kafka';

/** Headers a dead-lettered message carries on top of its original ones. */
export const DLQ_HEADERS = {
  errorCode: 'idlc-dlq-error-code',
  error: 'idlc-dlq-error',
  /** JSON: the field errors or the rejected events' results. */
  errors: 'idlc-dlq-errors',
  sourceTopic: 'idlc-dlq-source-topic',
  sourcePartition: 'idlc-dlq-source-partition',
  sourceOffset: 'idlc-dlq-source-offset',
  failedAt: 'idlc-dlq-failed-at',
} as const;

/** Header names read for the correlation id, first match wins. */
export const CORRELATION_HEADERS = ['correlation-id', 'x-correlation-id'];

export interface HrConsumerOptions {
  topic: string;
  groupId: string;
  dlqTopic: string;
  /** Where a new group starts: the HR topic's history is replayable, and idempotent, so from the beginning. */
  fromBeginning?: boolean;
  /** Partitions processed in parallel (order holds within each partition). */
  partitionsConsumedConcurrently?: number;
  /** Backoff of transient failures: first wait and cap, in ms. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  sessionTimeout?: number;
  heartbeatInterval?: number;
  maxWaitTimeInMs?: number;
}

export interface HrConsumerStats {
  /** Messages done with (applied or dead-lettered); the next three count HR events. */
  processed: number;
  applied: number;
  unchanged: number;
  duplicate: number;
  deadLettered: number;
  /** Transient failures retried. */
  retries: number;
  lastError?: string;
}

interface Failure {
  code: string;
  message: string;
  details?: unknown;
}

/** An error that retrying cannot fix: the message goes to the dead-letter topic. */
class PermanentFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

const describeErrors = (errors: FieldError[]) => errors.map((e) => `${e.field}: ${e.message}`).join('; ');

/**
 * Reads HR events (the webhook's JSON, one event or `{ events }` per message; key them by employee id
 * so one employee's facts stay in order) and applies them through the same path as POST /hr/events.
 * A message's offset is resolved only once its append succeeded or it was dead-lettered, and kafkajs
 * commits only resolved offsets, so a crash redelivers at most the unfinished messages; the HR event
 * id is the idempotency key, so a redelivery appends nothing twice.
 */
export class HrKafkaConsumer {
  readonly stats: HrConsumerStats = { processed: 0, applied: 0, unchanged: 0, duplicate: 0, deadLettered: 0, retries: 0 };
  private consumer?: Consumer;
  private producer?: Producer;
  private readonly opts: Required<HrConsumerOptions>;

  constructor(
    private readonly kafka: Kafka,
    private readonly feed: HrFeedService,
    private readonly clock: Clock,
    options: HrConsumerOptions,
    private readonly logger: MessagingLogger = silentLogger,
  ) {
    this.opts = {
      fromBeginning: true,
      partitionsConsumedConcurrently: 1,
      retryInitialMs: 100,
      retryMaxMs: 10_000,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 500,
      ...options,
    };
  }

  async start(): Promise<void> {
    if (this.consumer) return;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: this.opts.sessionTimeout,
      heartbeatInterval: this.opts.heartbeatInterval,
      maxWaitTimeInMs: this.opts.maxWaitTimeInMs,
    });
    this.producer = producer;
    this.consumer = consumer;
    try {
      await producer.connect();
      await consumer.connect();
      await consumer.subscribe({ topics: [this.opts.topic], fromBeginning: this.opts.fromBeginning });
      consumer.on(consumer.events.CRASH, (e) => this.logger.error('HR consumer crashed', { error: String(e.payload.error), restart: e.payload.restart }));
      await consumer.run({
        // kafkajs commits only the offsets resolved below: after each batch, and every few seconds within a long one.
        autoCommit: true,
        autoCommitInterval: 5000,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Finishes the message in hand (or abandons its retries, uncommitted), commits, leaves the group. */
  async stop(): Promise<void> {
    const { consumer, producer } = this;
    // The consumer first: a dead-letter send in progress still needs the producer.
    await consumer?.disconnect().catch((e) => this.logger.warn('HR consumer disconnect failed', { error: String(e) }));
    await producer?.disconnect().catch((e) => this.logger.warn('DLQ producer disconnect failed', { error: String(e) }));
    this.consumer = undefined;
    this.producer = undefined;
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    for (const message of batch.messages) {
      if (!p.isRunning() || p.isStale()) return;
      const done = await this.handle(batch.topic, batch.partition, message, p);
      // Not done means the consumer is stopping mid-retry: leave the offset unresolved.
      if (!done) return;
      p.resolveOffset(message.offset);
      await p.commitOffsetsIfNecessary();
      await p.heartbeat();
    }
  }

  /** Applies or dead-letters one message; false when it gave up because the consumer is stopping. */
  private async handle(topic: string, partition: number, message: KafkaMessage, p: EachBatchPayload): Promise<boolean> {
    const source = `${topic}/${partition}@${message.offset}`;
    let failure: Failure | undefined;
    let results: HrEventResult[] = [];
    const parsed = this.parse(message);
    if ('failure' in parsed) {
      failure = parsed.failure;
    } else {
      const correlationId = CORRELATION_HEADERS.map((h) => headerText(message.headers, h)).find((v) => v)?.slice(0, 128) ?? randomUUID();
      const meta = { source: 'hr-kafka' as const, actor: `kafka:${source}`, correlationId };
      const outcome = await this.retrying(source, p, async () => {
        try {
          return await this.feed.applyAll(parsed.events, meta);
        } catch (e) {
          // Still taken by another identity after the service's own retries: no retry will change that.
          if (e instanceof DuplicateKeyError) throw new PermanentFailure({ code: 'duplicate_key', message: e.message });
          throw e;
        }
      });
      if (outcome === undefined) return false;
      if ('failure' in outcome) failure = outcome.failure;
      else results = outcome.value;
      const rejected = results.filter((r) => r.status === 'rejected');
      if (!failure && rejected.length) {
        failure = {
          code: rejected[0].error!.code,
          message: rejected.map((r) => `${r.eventId}: ${r.error!.message}`).join('; '),
          details: results,
        };
      }
    }
    if (failure) {
      const sent = await this.retrying(source, p, () => this.deadLetter(topic, partition, message, failure!));
      if (sent === undefined) return false;
      this.stats.deadLettered++;
      this.logger.warn('HR message dead-lettered', { source, code: failure.code, error: failure.message.slice(0, 500) });
    }
    for (const r of results) if (r.status !== 'rejected') this.stats[r.status]++;
    this.stats.processed++;
    return true;
  }

  private parse(message: KafkaMessage): { events: HrEventDto[] } | { failure: Failure } {
    if (!message.value || message.value.length === 0) return { failure: { code: 'invalid_json', message: 'the message has no value' } };
    let body: unknown;
    try {
      body = JSON.parse(message.value.toString('utf8'));
    } catch (e) {
      return { failure: { code: 'invalid_json', message: `the message value is not JSON: ${(e as Error).message}` } };
    }
    const r = parseHrPayload(body);
    if (!r.ok) return { failure: { code: 'validation_failed', message: describeErrors(r.errors), details: r.errors } };
    const ids = r.events.map((e) => e.eventId);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup) return { failure: { code: 'validation_failed', message: `eventId ${dup} appears twice in the batch` } };
    return { events: r.events };
  }

  /**
   * Runs fn until it succeeds or fails permanently, backing off between transient failures and
   * heartbeating so the group keeps the partition. Undefined when the consumer stops meanwhile.
   */
  private async retrying<T>(source: string, p: EachBatchPayload, fn: () => Promise<T>): Promise<{ value: T } | { failure: Failure } | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { value: await fn() };
      } catch (e) {
        if (e instanceof PermanentFailure) return { failure: e.failure };
        this.stats.retries++;
        this.stats.lastError = String(e);
        const wait = backoff(attempt, this.opts.retryInitialMs, this.opts.retryMaxMs);
        this.logger.warn('HR message failed, retrying', { source, attempt, retryInMs: wait, error: String(e) });
        const until = Date.now() + wait;
        while (Date.now() < until) {
          if (!p.isRunning() || p.isStale()) return undefined;
          await sleep(Math.min(until - Date.now(), 250));
          await p.heartbeat();
        }
        if (!p.isRunning() || p.isStale()) return undefined;
      }
    }
  }

  /** The original key, value and headers, plus the error in idlc-dlq-* headers: replayable as is. */
  private async deadLetter(topic: string, partition: number, message: KafkaMessage, failure: Failure): Promise<void> {
    const headers: IHeaders = { ...(message.headers ?? {}) };
    headers[DLQ_HEADERS.errorCode] = failure.code;
    headers[DLQ_HEADERS.error] = failure.message.slice(0, 2000);
    // Left out rather than cut when huge: a truncated JSON header helps nobody.
    const details = failure.details === undefined ? undefined : JSON.stringify(failure.details);
    if (details !== undefined && details.length <= 16_000) headers[DLQ_HEADERS.errors] = details;
    headers[DLQ_HEADERS.sourceTopic] = topic;
    headers[DLQ_HEADERS.sourcePartition] = String(partition);
    headers[DLQ_HEADERS.sourceOffset] = message.offset;
    headers[DLQ_HEADERS.failedAt] = this.clock.now().toISOString();
    await this.producer!.send({
      topic: this.opts.dlqTopic,
      acks: -1,
      messages: [{ key: message.key, value: message.value, headers }],
    });
  }
}
