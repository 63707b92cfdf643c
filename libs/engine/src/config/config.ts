import { resolve } from 'node:path';

/** One typed, validated configuration, read from the environment once at start. */
export interface EngineConfig {
  eventStore: 'sqlite' | 'postgres' | 'eventstoredb';
  readModelStore: 'sqlite' | 'postgres';
  dataDir: string;
  sqliteFile: string;
  sqliteSynchronous: 'NORMAL' | 'FULL';
  databaseUrl?: string;
  /** PostgreSQL schema for events and read models (created when missing). */
  databaseSchema?: string;
  eventStoreUrl?: string;
  host: string;
  port: number;
  /** all: one process serves HTTP and runs projections and sagas; api / worker split them. */
  workerMode: 'all' | 'api' | 'worker';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  birthrightPolicyFile: string;
  inactivityDays: number;
  inactivityDaysByEmploymentType: Record<string, number>;
  inactivityDaysByRole: Record<string, number>;
  inactivityWarningDays: number;
  retentionDays: number;
  /** See LifecyclePolicy.loginRecordIntervalSeconds. */
  loginRecordIntervalSeconds: number;
  hrWebhookSecrets: string[];
  hrWebhookToleranceSeconds: number;
  /** How far behind the store's head projections may be for /ready to say ready. */
  readyMaxLagEvents: number;
  aggregateCacheSize: number;
  snapshotEvery: number;
  /** Projection bulk mode (rebuilds, long catch-ups): see BulkOptions in projection-runner.ts. */
  projectionBulk: { threshold: number; batchSize: number; commitEvery: number };
  /** Bearer tokens SCIM clients (Okta, Entra ID) present; SCIM answers 401 to everyone while empty. */
  scimTokens: string[];
  /** What a SCIM DELETE does to the account (the SCIM resource is gone either way). */
  scimDeleteMode: 'disable' | 'delete';
  /** SCIM group displayName -> role name; a group not listed grants a role named like the group. */
  scimGroupRoleMap: Record<string, string>;
  /** Kafka in (HR feed) and out (lifecycle events); absent when KAFKA_BROKERS is unset. */
  kafka?: KafkaConfig;
  /** JSON file of trusted SSO identity providers (validated when the HTTP app starts); no IdP is trusted when unset. */
  ssoIdpsFile?: string;
  /** Mapped SSO attribute holding an HR employee id: links a first login to the HR-created identity. */
  ssoMatchAttribute?: string;
  /**
   * Key-encryption key (32 bytes) that wraps each identity's data key at rest (envelope encryption).
   * Unset: data keys are stored unwrapped in identity_data_keys, protected only by the database's access control.
   */
  dataKeyEncryptionKey?: Buffer;
}

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  hrTopic: string;
  hrGroup: string;
  dlqTopic: string;
  lifecycleTopic: string;
  /** Used when the engine creates missing topics at start. */
  topicPartitions: number;
  topicReplicationFactor: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): EngineConfig {
  const problems: string[] = [];
  const str = (name: string, def?: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? def : v;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T => {
    const v = str(name, def)!;
    if (!(allowed as readonly string[]).includes(v)) {
      problems.push(`${name}=${JSON.stringify(v)}: must be one of ${allowed.join(', ')}`);
      return def;
    }
    return v as T;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = str(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}=${JSON.stringify(v)}: must be a whole number from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const map = (name: string, def: Record<string, number>): Record<string, number> => {
    // Written as key=days pairs: "contractor=30,intern=14".
    const v = str(name);
    if (v === undefined) return def;
    const out: Record<string, number> = {};
    for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^([^=\s]+)=(\d{1,5})$/.exec(part);
      if (!m) {
        problems.push(`${name}: '${part}' must look like key=days (e.g. contractor=30)`);
        continue;
      }
      out[m[1]] = Number(m[2]);
    }
    return out;
  };
  const url = (name: string, schemes: string[]): string | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (!schemes.includes(u.protocol.replace(/:$/, ''))) throw new Error('scheme');
    } catch {
      problems.push(`${name}: must be a URL starting with ${schemes.map((s) => s + '://').join(' or ')}`);
    }
    return v;
  };

  const eventStore = oneOf('EVENT_STORE', ['sqlite', 'postgres', 'eventstoredb'] as const, 'sqlite');
  const databaseUrl = url('DATABASE_URL', ['postgres', 'postgresql']);
  const eventStoreUrl = url('EVENTSTORE_URL', ['esdb', 'esdb+discover', 'kurrentdb', 'kurrentdb+discover']);
  const readDefault = eventStore === 'postgres' ? 'postgres' : eventStore === 'eventstoredb' && databaseUrl ? 'postgres' : 'sqlite';
  const readModelStore = oneOf('READ_MODEL_STORE', ['sqlite', 'postgres'] as const, readDefault);
  if (eventStore === 'postgres' && !databaseUrl) problems.push('DATABASE_URL is required when EVENT_STORE=postgres');
  if (readModelStore === 'postgres' && !databaseUrl) problems.push('DATABASE_URL is required when READ_MODEL_STORE=postgres');
  if (eventStore === 'eventstoredb' && !eventStoreUrl) problems.push('EVENTSTORE_URL is required when EVENT_STORE=eventstoredb');
  if (eventStore === 'postgres' && readModelStore !== 'postgres') problems.push('READ_MODEL_STORE must be postgres when EVENT_STORE=postgres');
  if (eventStore === 'sqlite' && readModelStore !== 'sqlite') problems.push('READ_MODEL_STORE must be sqlite when EVENT_STORE=sqlite');

  const dataDir = resolve(str('DATA_DIR', './data')!);
  const secrets = (str('HR_WEBHOOK_SECRETS') ?? str('HR_WEBHOOK_SECRET') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of secrets) if (s.length < 16) problems.push('HR_WEBHOOK_SECRETS: each secret must be at least 16 characters');

  const cfg: EngineConfig = {
    eventStore,
    readModelStore,
    dataDir,
    sqliteFile: resolve(str('SQLITE_FILE', `${dataDir}/idlc.db`)!),
    sqliteSynchronous: oneOf('SQLITE_SYNCHRONOUS', ['NORMAL', 'FULL'] as const, 'NORMAL'),
    databaseUrl,
    databaseSchema: (() => {
      const v = str('DATABASE_SCHEMA');
      if (v !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(v)) problems.push('DATABASE_SCHEMA: must be a lower-case SQL identifier');
      return v;
    })(),
    eventStoreUrl,
    host: str('HOST', '127.0.0.1')!,
    port: int('PORT', 3000, 0, 65535),
    workerMode: oneOf('WORKER_MODE', ['all', 'api', 'worker'] as const, 'all'),
    logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    birthrightPolicyFile: resolve(str('BIRTHRIGHT_POLICY_FILE', './config/birthright.yaml')!),
    inactivityDays: int('INACTIVITY_DAYS', 90, 0, 36500),
    inactivityDaysByEmploymentType: map('INACTIVITY_DAYS_BY_EMPLOYMENT_TYPE', { contractor: 30 }),
    inactivityDaysByRole: map('INACTIVITY_DAYS_BY_ROLE', {}),
    inactivityWarningDays: int('INACTIVITY_WARNING_DAYS', 7, 0, 3650),
    retentionDays: int('RETENTION_DAYS', 30, 0, 36500),
    loginRecordIntervalSeconds: int('LOGIN_RECORD_INTERVAL_SECONDS', 300, 0, 86400),
    hrWebhookSecrets: secrets,
    hrWebhookToleranceSeconds: int('HR_WEBHOOK_TOLERANCE_SECONDS', 300, 1, 86400),
    readyMaxLagEvents: int('READY_MAX_LAG_EVENTS', 10000, 0, 1e9),
    aggregateCacheSize: int('AGGREGATE_CACHE_SIZE', 100000, 0, 1e8),
    snapshotEvery: int('SNAPSHOT_EVERY', 100, 1, 1e6),
    projectionBulk: {
      threshold: int('PROJECTION_BULK_THRESHOLD', 20_000, 1, 1e12),
      batchSize: int('PROJECTION_BULK_BATCH_SIZE', 10_000, 1, 1e6),
      commitEvery: int('PROJECTION_BULK_COMMIT_EVERY', 100_000, 1, 1e9),
    },
    scimTokens: (str('SCIM_TOKENS') ?? '').split(',').map((t) => t.trim()).filter(Boolean),
    scimDeleteMode: oneOf('SCIM_DELETE_MODE', ['disable', 'delete'] as const, 'delete'),
    scimGroupRoleMap: jsonMap('SCIM_GROUP_ROLE_MAP', str, problems),
    kafka: kafkaConfig(str, int, problems),
    ssoIdpsFile: str('SSO_IDPS_FILE') === undefined ? undefined : resolve(str('SSO_IDPS_FILE')!),
    ssoMatchAttribute: (() => {
      const v = str('SSO_MATCH_ATTRIBUTE', 'employeeId')!;
      // Email is mutable and reusable: it must never decide which identity a login lands on.
      if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(v) || v.toLowerCase() === 'email') problems.push(`SSO_MATCH_ATTRIBUTE=${JSON.stringify(v)}: must be an attribute name (not email) holding the HR employee id`);
      return v;
    })(),
    dataKeyEncryptionKey: (() => {
      const v = str('DATA_KEY_ENCRYPTION_KEY');
      if (v === undefined) return undefined;
      const key = Buffer.from(v, 'base64');
      // The value itself is never echoed: it is a secret.
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v) || key.length !== 32 || key.toString('base64') !== v) {
        problems.push('DATA_KEY_ENCRYPTION_KEY: must be 32 random bytes in base64 (44 characters, e.g. `openssl rand -base64 32`)');
        return undefined;
      }
      return key;
    })(),
  };
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

/** Kafka settings; messaging stays off unless KAFKA_BROKERS names at least one broker. */
function kafkaConfig(
  str: (name: string, def?: string) => string | undefined,
  int: (name: string, def: number, min: number, max: number) => number,
  problems: string[],
): KafkaConfig | undefined {
  const raw = str('KAFKA_BROKERS');
  if (raw === undefined) return undefined;
  const brokers = raw.split(',').map((b) => b.trim()).filter(Boolean);
  if (!brokers.length) problems.push('KAFKA_BROKERS: must list at least one host:port');
  for (const b of brokers) if (!/^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/.test(b)) problems.push(`KAFKA_BROKERS: '${b}' must look like host:port`);
  // Kafka's own rule for topic names; group and client ids only need to be printable.
  const topic = (name: string, def: string): string => {
    const v = str(name, def)!;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(v) || v === '.' || v === '..') problems.push(`${name}=${JSON.stringify(v)}: must be 1-249 characters: letters, digits, . _ -`);
    return v;
  };
  const ident = (name: string, def: string): string => {
    const v = str(name, def)!;
    if (!/^[\x21-\x7e]{1,255}$/.test(v)) problems.push(`${name}=${JSON.stringify(v)}: must be 1-255 printable characters without spaces`);
    return v;
  };
  const kafka: KafkaConfig = {
    brokers,
    clientId: ident('KAFKA_CLIENT_ID', 'idlc'),
    hrTopic: topic('KAFKA_HR_TOPIC', 'idlc.hr-events'),
    hrGroup: ident('KAFKA_HR_GROUP', 'idlc-hr-feed'),
    dlqTopic: topic('KAFKA_DLQ_TOPIC', 'idlc.hr-events.dlq'),
    lifecycleTopic: topic('KAFKA_LIFECYCLE_TOPIC', 'idlc.lifecycle-events'),
    topicPartitions: int('KAFKA_TOPIC_PARTITIONS', 3, 1, 10000),
    topicReplicationFactor: int('KAFKA_TOPIC_REPLICATION_FACTOR', 1, 1, 32),
  };
  const topics = [kafka.hrTopic, kafka.dlqTopic, kafka.lifecycleTopic];
  if (new Set(topics).size !== topics.length) problems.push('KAFKA_HR_TOPIC, KAFKA_DLQ_TOPIC and KAFKA_LIFECYCLE_TOPIC must be three different topics');
  return kafka;
}

/** A JSON object of string to string, e.g. SCIM_GROUP_ROLE_MAP='{"Engineering Admins":"eng-admin"}'. */
function jsonMap(name: string, str: (name: string) => string | undefined, problems: string[]): Record<string, string> {
  const v = str(name);
  if (v === undefined) return {};
  try {
    const o = JSON.parse(v);
    if (o && typeof o === 'object' && !Array.isArray(o) && Object.values(o).every((x) => typeof x === 'string' && x.length > 0)) {
      return Object.assign(Object.create(null), o);
    }
  } catch {
    // reported below
  }
  problems.push(`${name}: must be a JSON object of group displayName to role name`);
  return {};
}
