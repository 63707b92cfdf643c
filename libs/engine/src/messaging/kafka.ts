import { Admin, IHeaders, Kafka, logLevel as KafkaLogLevel, LogEntry } from 'kafkajs';
import type { EngineConfig, KafkaConfig } from '../config/config';

/** What messaging logs through; the default writes JSON lines to stderr, filtered by LOG_LEVEL. */
export interface MessagingLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

const RANK: Record<EngineConfig['logLevel'], number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: 100 };

export function defaultMessagingLogger(level: EngineConfig['logLevel']): MessagingLogger {
  const at = (lvl: 'info' | 'warn' | 'error', rank: number) => (message: string, extra?: Record<string, unknown>) => {
    if (RANK[level] > rank) return;
    process.stderr.write(JSON.stringify({ level: lvl, time: new Date().toISOString(), component: 'kafka', msg: message, ...extra }) + '\n');
  };
  return { info: at('info', 30), warn: at('warn', 40), error: at('error', 50) };
}

export const silentLogger: MessagingLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** One kafkajs client for the engine; its own log lines go through our logger at warn and above. */
export function createKafka(config: Pick<KafkaConfig, 'brokers' | 'clientId'>, logger: MessagingLogger, retries = 8): Kafka {
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries, initialRetryTime: 200, maxRetryTime: 10000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log }: LogEntry) => {
        const { message, timestamp: _t, logger: _l, ...extra } = log as Record<string, any>;
        const text = `kafkajs ${namespace}: ${message}`;
        // kafkajs reports recoverable trouble (rebalances, reconnects) as ERROR: keep those at warn.
        if (level === KafkaLogLevel.ERROR && !/rebalanc|reconnect|Connection error|not the leader/i.test(String(message))) logger.error(text, extra);
        else logger.warn(text, extra);
      },
  });
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
}

/** Creates the topics that are missing (auto-creation may be off on the broker); existing ones are left as they are. */
export async function ensureTopics(admin: Admin, topics: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length) {
    await admin.createTopics({ waitForLeaders: true, topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: t.replicationFactor })) });
  }
  return missing.map((t) => t.topic);
}

/** A header's value as text (kafkajs gives Buffers, possibly repeated). */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== wanted || v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  }
  return undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** Exponential backoff with a cap: attempt 1 waits `initial`. */
export const backoff = (attempt: number, initial: number, max: number): number => Math.min(max, initial * 2 ** Math.min(attempt - 1, 16));
