import type { Admin, Kafka } from 'kafkajs';
import { performance } from 'node:perf_hooks';
import { MessagingLogger, silentLogger, sleep } from './kafka';

export interface PartitionLag {
  partition: number;
  /** The group's committed offset (the next message it will read); null before its first commit. */
  committed: number | null;
  /** The broker's end offset (high watermark). */
  end: number;
  /** Messages between the two: what the group has still to consume. */
  lag: number;
}

export interface ConsumerLag {
  topic: string;
  groupId: string;
  partitions: PartitionLag[];
  total: number;
}

export interface ConsumerLagOptions {
  topic: string;
  groupId: string;
  /** Where the group starts without a commit (the HR consumer's default: the beginning). */
  fromBeginning?: boolean;
  /** A reading is reused for this long, so frequent or parallel scrapes cost the broker one request pair. */
  cacheMs?: number;
  /** How long read() waits for the broker before giving up on this call. */
  timeoutMs?: number;
}

/** Lag of one partition from the broker's answers (offsets as kafkajs gives them: strings, -1 for none). */
export function partitionLag(committed: string, low: string, high: string, fromBeginning: boolean): PartitionLag & { partition: -1 } {
  const end = Number(high);
  const start = Number(low);
  const c = Number(committed);
  const has = c >= 0;
  // Without a commit the group reads from the oldest retained message (or from the end); a commit
  // below the retained range resumes at the oldest message too.
  const next = has ? Math.max(c, start) : fromBeginning ? start : end;
  return { partition: -1, committed: has ? c : null, end, lag: Math.max(0, end - next) };
}

/**
 * The HR consumer group's lag, asked of the broker (the group's committed offsets against each
 * partition's end offset), with a short cache and a bounded wait: a slow or unreachable broker makes
 * read() answer undefined after `timeoutMs` instead of holding a metrics scrape, and the request it
 * started still refreshes the cache for the next call.
 */
export class ConsumerLagMonitor {
  private admin?: Admin;
  private connected?: Promise<void>;
  private last?: { lag: ConsumerLag; at: number };
  private inFlight?: Promise<ConsumerLag>;
  private closed = false;
  lastError?: string;
  private readonly opts: Required<ConsumerLagOptions>;

  constructor(
    private readonly kafka: Kafka,
    options: ConsumerLagOptions,
    private readonly logger: MessagingLogger = silentLogger,
  ) {
    this.opts = { fromBeginning: true, cacheMs: 5000, timeoutMs: 2000, ...options };
  }

  /** The lag as of at most `cacheMs` ago; undefined when the broker did not answer in time (or after close). */
  async read(): Promise<ConsumerLag | undefined> {
    if (this.closed) return undefined;
    if (this.last && performance.now() - this.last.at < this.opts.cacheMs) return this.last.lag;
    this.inFlight ??= this.fetch()
      .then(
        (lag) => {
          this.last = { lag, at: performance.now() };
          this.lastError = undefined;
          return lag;
        },
        (e) => {
          if (this.lastError === undefined) this.logger.warn('consumer lag: the broker did not answer', { error: String(e) });
          this.lastError = String(e);
          this.dropAdmin();
          throw e;
        },
      )
      .finally(() => (this.inFlight = undefined));
    return Promise.race([this.inFlight.catch(() => undefined), sleep(this.opts.timeoutMs).then(() => undefined)]);
  }

  /** Disconnects without waiting for a hung request: closing the connections ends it. */
  async close(): Promise<void> {
    this.closed = true;
    this.last = undefined;
    await Promise.race([this.dropAdmin(), sleep(this.opts.timeoutMs)]);
  }

  private async fetch(): Promise<ConsumerLag> {
    const { topic, groupId } = this.opts;
    if (!this.admin) {
      // Few retries: the caller's timeout bounds the wait, the next scrape tries again.
      this.admin = this.kafka.admin({ retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 } });
      this.connected = this.admin.connect();
    }
    const admin = this.admin;
    await this.connected;
    if (this.closed) throw new Error('consumer lag monitor closed');
    const [ends, groups] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const committed = new Map((groups.find((g) => g.topic === topic)?.partitions ?? []).map((p) => [p.partition, p.offset]));
    const partitions = ends
      .map((p) => ({ ...partitionLag(committed.get(p.partition) ?? '-1', p.low, p.high, this.opts.fromBeginning), partition: p.partition }))
      .sort((a, b) => a.partition - b.partition);
    return { topic, groupId, partitions, total: partitions.reduce((n, p) => n + p.lag, 0) };
  }

  private async dropAdmin(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    this.connected = undefined;
    await admin?.disconnect().catch(() => undefined);
  }
}
