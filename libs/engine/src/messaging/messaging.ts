import type { Clock } from '@idlc/domain';
import type { EventStore } from '@idlc/event-store';
import type { SqlDatabase } from '@idlc/sql';
import type { Kafka } from 'kafkajs';
import type { EngineConfig, KafkaConfig } from '../config/config';
import { HrFeedService } from '../hr-feed/hr-feed.service';
import type { IdentityCommands } from '../identity/identity-commands';
import { ConsumerLagMonitor, ConsumerLagOptions } from './consumer-lag';
import { HrConsumerOptions, HrConsumerStats, HrKafkaConsumer } from './hr-consumer';
import { backoff, createKafka, defaultMessagingLogger, ensureTopics, MessagingLogger, sleep } from './kafka';
import { LifecyclePublisher, LifecyclePublisherOptions } from './lifecycle-publisher';

/** What messaging needs from the engine (the Engine itself satisfies it). */
export interface MessagingHost {
  readonly commands: IdentityCommands;
  readonly store: EventStore;
  readonly readDb: SqlDatabase;
  readonly clock: Clock;
  readonly config: Pick<EngineConfig, 'logLevel'>;
}

export interface MessagingOptions {
  logger?: MessagingLogger;
  /** Tuning of the HR consumer (topic, group and DLQ come from the config). */
  hr?: Omit<HrConsumerOptions, 'topic' | 'groupId' | 'dlqTopic'>;
  lifecycle?: Omit<LifecyclePublisherOptions, 'topic'>;
  /** Cache and timeout of the HR consumer group's lag reads (topic and group come from the config). */
  lag?: Pick<ConsumerLagOptions, 'cacheMs' | 'timeoutMs'>;
  /** Backoff of start attempts while the broker is unreachable, in ms. */
  startRetryInitialMs?: number;
  startRetryMaxMs?: number;
}

export interface MessagingStatus {
  state: 'idle' | 'starting' | 'running' | 'stopped';
  lastError?: string;
  hr: HrConsumerStats;
  lifecycle: { position: number; published: number };
}

/**
 * Kafka in and out for one engine: creates the missing topics, then runs the lifecycle publisher and
 * the HR consumer. Starting never throws: while the broker is unreachable it retries with backoff
 * (the engine keeps serving), and stop() cancels that.
 */
export class Messaging {
  readonly kafka: Kafka;
  readonly hrConsumer: HrKafkaConsumer;
  readonly publisher: LifecyclePublisher;
  /** The HR consumer group's lag against the broker's end offsets (for /metrics). */
  readonly consumerLag: ConsumerLagMonitor;
  private state: MessagingStatus['state'] = 'idle';
  private lastError?: string;
  private starting?: Promise<void>;
  private readonly logger: MessagingLogger;
  private wakeStop!: () => void;
  private readonly stopSignal = new Promise<void>((r) => (this.wakeStop = r));

  constructor(
    readonly config: KafkaConfig,
    host: MessagingHost,
    private readonly options: MessagingOptions = {},
  ) {
    this.logger = options.logger ?? defaultMessagingLogger(host.config.logLevel);
    this.kafka = createKafka(config, this.logger);
    this.hrConsumer = new HrKafkaConsumer(
      this.kafka,
      new HrFeedService(host.commands),
      host.clock,
      { ...options.hr, topic: config.hrTopic, groupId: config.hrGroup, dlqTopic: config.dlqTopic },
      this.logger,
    );
    this.publisher = new LifecyclePublisher(this.kafka, host.store, host.readDb, { ...options.lifecycle, topic: config.lifecycleTopic }, this.logger);
    this.consumerLag = new ConsumerLagMonitor(
      // Its own client with few retries: a scrape must not start minutes of reconnecting.
      createKafka(config, this.logger, 1),
      { ...options.lag, topic: config.hrTopic, groupId: config.hrGroup, fromBeginning: options.hr?.fromBeginning ?? true },
      this.logger,
    );
  }

  /** Resolves once both directions run, or once stop() was called; repeated calls share one start. */
  start(): Promise<void> {
    this.starting ??= this.startLoop();
    return this.starting;
  }

  private async startLoop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'starting';
    for (let attempt = 1; this.state === 'starting'; attempt++) {
      try {
        await this.startOnce();
        if (this.state !== 'starting') {
          // stop() came in meanwhile and may not have waited for this attempt.
          await this.hrConsumer.stop();
          await this.publisher.stop();
          return;
        }
        this.state = 'running';
        this.lastError = undefined;
        this.logger.info('messaging running', { hrTopic: this.config.hrTopic, lifecycleTopic: this.config.lifecycleTopic });
        return;
      } catch (e) {
        this.lastError = String(e);
        await this.hrConsumer.stop();
        await this.publisher.stop();
        if (this.state !== 'starting') return;
        const wait = backoff(attempt, this.options.startRetryInitialMs ?? 1000, this.options.startRetryMaxMs ?? 30_000);
        this.logger.error('messaging failed to start, retrying', { attempt, retryInMs: wait, error: this.lastError });
        await Promise.race([sleep(wait), this.stopSignal]);
      }
    }
  }

  private async startOnce(): Promise<void> {
    // A client with few retries: an unreachable broker fails this attempt quickly, the loop retries it.
    const admin = createKafka(this.config, this.logger, 1).admin();
    try {
      await admin.connect();
      const spec = { numPartitions: this.config.topicPartitions, replicationFactor: this.config.topicReplicationFactor };
      const created = await ensureTopics(admin, [
        { topic: this.config.hrTopic, ...spec },
        { topic: this.config.dlqTopic, ...spec },
        { topic: this.config.lifecycleTopic, ...spec },
      ]);
      if (created.length) this.logger.info('created topics', { topics: created });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await this.publisher.start();
    await this.hrConsumer.start();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.wakeStop();
    // An attempt stuck connecting is not waited for long: it tears itself down when it returns.
    if (this.starting) await Promise.race([this.starting, sleep(5000)]);
    // Consumer first: events it appends while stopping are still published by the next start.
    await this.hrConsumer.stop();
    await this.publisher.stop();
    await this.consumerLag.close();
  }

  status(): MessagingStatus {
    return {
      state: this.state,
      lastError: this.lastError,
      hr: { ...this.hrConsumer.stats },
      lifecycle: { position: this.publisher.position, published: this.publisher.published },
    };
  }
}
