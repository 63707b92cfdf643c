import { IDENTITY_STREAM_PREFIX } from '@idlc/domain';
import type { EventStore, StoredEvent, Subscription } from '@idlc/event-store';
import type { SqlDatabase } from '@idlc/sql';
import { IHeaders, Kafka, Message, Partitioners, Producer } from 'kafkajs';
import { MessagingLogger, silentLogger } from './kafka';

export const OUTBOX_CHECKPOINTS_DDL = `
CREATE TABLE IF NOT EXISTS outbox_checkpoints (
  name TEXT PRIMARY KEY,
  position BIGINT NOT NULL
);`;

/** Header names on every lifecycle message. */
export const LIFECYCLE_HEADERS = {
  eventId: 'event-id',
  eventType: 'event-type',
  schemaVersion: 'schema-version',
  correlationId: 'correlation-id',
  contentType: 'content-type',
} as const;

export interface LifecyclePublisherOptions {
  topic: string;
  /** Row in outbox_checkpoints; defaults to `kafka:<topic>` so a new topic gets the whole history. */
  checkpointName?: string;
  /** Store events per subscription batch (one checkpoint write each). */
  batchSize?: number;
  /** Bytes of values per produce request; stays under the broker's default 1 MB message.max.bytes. */
  maxRequestBytes?: number;
}

/** The message key: the identity id, so one identity's events share a partition and keep their order. */
export function lifecycleKey(streamId: string): string {
  return streamId.startsWith(IDENTITY_STREAM_PREFIX) ? streamId.slice(IDENTITY_STREAM_PREFIX.length) : streamId;
}

export function lifecycleMessage(e: StoredEvent): Message {
  const headers: IHeaders = {
    [LIFECYCLE_HEADERS.eventId]: e.id,
    [LIFECYCLE_HEADERS.eventType]: e.type,
    [LIFECYCLE_HEADERS.schemaVersion]: String(e.version),
    [LIFECYCLE_HEADERS.contentType]: 'application/json',
  };
  if (typeof e.metadata?.correlationId === 'string') headers[LIFECYCLE_HEADERS.correlationId] = e.metadata.correlationId;
  const value = JSON.stringify({
    id: e.id,
    position: e.position,
    streamId: e.streamId,
    revision: e.revision,
    type: e.type,
    version: e.version,
    data: e.data,
    recordedAt: e.recordedAt.toISOString(),
    metadata: e.metadata,
  });
  return { key: lifecycleKey(e.streamId), value, headers };
}

/**
 * Publishes every stored event to the lifecycle topic. The event store is the outbox: a catch-up
 * subscription on its global order sends each batch with an idempotent producer (acks=all, one
 * request in flight, so per-partition order survives retries) and only then moves the checkpoint.
 * A crash between the two resends the batch: at-least-once, consumers dedupe by the event-id header.
 */
export class LifecyclePublisher {
  private producer?: Producer;
  private subscription?: Subscription;
  private checkpoint = 0;
  private readonly name: string;
  published = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly store: EventStore,
    private readonly db: SqlDatabase,
    private readonly opts: LifecyclePublisherOptions,
    private readonly logger: MessagingLogger = silentLogger,
  ) {
    this.name = opts.checkpointName ?? `kafka:${opts.topic}`;
  }

  /** The last position the broker acknowledged and the checkpoint recorded. */
  get position(): number {
    return this.checkpoint;
  }

  async start(): Promise<void> {
    if (this.subscription) return;
    await this.db.exec(OUTBOX_CHECKPOINTS_DDL);
    const row = await this.db.get<{ position: number }>('SELECT position FROM outbox_checkpoints WHERE name = ?', [this.name]);
    this.checkpoint = row ? Number(row.position) : 0;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    this.producer = producer;
    this.subscription = this.store.subscribeToAll((batch) => this.publish(batch), {
      fromPosition: this.checkpoint,
      batchSize: this.opts.batchSize ?? 500,
      onError: (e, attempt) => this.logger.warn('lifecycle publish failed, retrying the batch', { attempt, position: this.checkpoint, error: String(e) }),
    });
  }

  /** Waits until everything in the store at call time is acknowledged and checkpointed. */
  async caughtUp(): Promise<void> {
    await this.subscription?.caughtUp();
  }

  /** Lets the batch in flight finish (send and checkpoint), then disconnects. */
  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
    await this.producer?.disconnect().catch((e) => this.logger.warn('lifecycle producer disconnect failed', { error: String(e) }));
    this.producer = undefined;
  }

  private async publish(batch: StoredEvent[]): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new Error('lifecycle publisher is stopped');
    const max = this.opts.maxRequestBytes ?? 512 * 1024;
    let chunk: Message[] = [];
    let bytes = 0;
    const flush = async () => {
      if (!chunk.length) return;
      // Awaited one after another: a later chunk never overtakes an earlier one.
      await producer.send({ topic: this.opts.topic, acks: -1, messages: chunk });
      chunk = [];
      bytes = 0;
    };
    for (const e of batch) {
      const m = lifecycleMessage(e);
      const size = (m.value as string).length;
      if (chunk.length && bytes + size > max) await flush();
      chunk.push(m);
      bytes += size;
    }
    await flush();
    const last = batch[batch.length - 1].position;
    // Monotonic, so a slower second publisher can never move the checkpoint back.
    await this.db.run(
      `INSERT INTO outbox_checkpoints (name, position) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE excluded.position > outbox_checkpoints.position`,
      [this.name, last],
    );
    this.checkpoint = last;
    this.published += batch.length;
  }
}
