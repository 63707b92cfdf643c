import type { Clock } from '@idlc/domain';
import type { SqlDatabase } from '@idlc/sql';
import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from './aes-gcm';
import { Lru } from '../common/lru';
import { chunk, placeholders } from '../projections/projection';

/**
 * One random AES-256 data key per identity, kept outside the event streams. Destroying it (the
 * row keeps a tombstone with destroyed_at) makes every personal value encrypted under it
 * unreadable for good: crypto-shredding, so the append-only log never has to be rewritten.
 */
export const DATA_KEYS_DDL = `
CREATE TABLE IF NOT EXISTS identity_data_keys (
  identity_id TEXT PRIMARY KEY,
  key_version INTEGER NOT NULL,
  key_material TEXT,
  created_at BIGINT NOT NULL,
  destroyed_at BIGINT
);`;

/** Stored key material: `raw:<base64 key>` or `kek:v1:<base64 iv|wrapped key|tag>` (AES-256-GCM under DATA_KEY_ENCRYPTION_KEY). */
const RAW = 'raw:';
const WRAPPED = 'kek:v1:';

export type DataKeyStatus =
  | { state: 'active'; version: number; key: Buffer }
  | { state: 'destroyed'; destroyedAt: number }
  /** No row: the identity never had a personal value encrypted (or the key table was lost). */
  | { state: 'missing' }
  /** A row that cannot be used: wrapped without the KEK configured, or the KEK does not open it. */
  | { state: 'unusable'; reason: string };

/** A key that should exist but does not, or cannot be opened: fatal for that identity's reads. */
export class DataKeyUnavailableError extends Error {
  constructor(
    readonly identityId: string,
    reason: string,
  ) {
    super(`personal data of identity ${identityId} cannot be decrypted: ${reason}`);
    this.name = 'DataKeyUnavailableError';
  }
}

/** Writing personal data for an identity whose key was destroyed: never allowed. */
export class IdentityErasedError extends Error {
  constructor(readonly identityId: string) {
    super(`identity ${identityId} was erased; no personal data can be written for it`);
    this.name = 'IdentityErasedError';
  }
}

export interface DataKeyStoreOptions {
  /** Key-encryption key (32 bytes): new data keys are stored wrapped by it. */
  kek?: Buffer;
  /** Unwrapped keys kept in memory. */
  cacheSize: number;
  /**
   * How long a cached key (or its absence) is trusted. Another process may destroy a key: this
   * bounds how long this one can still decrypt with its copy. A destroyed key is cached for good.
   */
  cacheTtlMs?: number;
}

interface Row {
  identity_id: string;
  key_version: number;
  key_material: string | null;
  destroyed_at: number | null;
}

const KEY_BYTES = 32;

export class DataKeyStore {
  private readonly cache: Lru<string, { status: DataKeyStatus; until: number }>;
  private readonly ttl: number;
  /** Key lookups that went to the database (tests prove the hot path makes none). */
  lookups = 0;

  private constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
    private readonly options: DataKeyStoreOptions,
  ) {
    this.cache = new Lru(options.cacheSize);
    this.ttl = options.cacheTtlMs ?? 60_000;
  }

  static async open(db: SqlDatabase, clock: Clock, options: DataKeyStoreOptions): Promise<DataKeyStore> {
    await db.exec(DATA_KEYS_DDL);
    // SQLite: a destroyed key's bytes are zeroed in the page instead of lingering in free space.
    if (db.dialect === 'sqlite') await db.exec('PRAGMA secure_delete = FAST');
    const store = new DataKeyStore(db, clock, options);
    if (options.kek) await store.wrapRawKeys();
    return store;
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  private remember(id: string, status: DataKeyStatus): DataKeyStatus {
    this.cache.set(id, { status, until: status.state === 'destroyed' ? Infinity : this.now() + this.ttl });
    return status;
  }

  private cached(id: string): DataKeyStatus | undefined {
    const c = this.cache.get(id);
    if (!c) return undefined;
    if (c.until < this.now()) {
      this.cache.delete(id);
      return undefined;
    }
    return c.status;
  }

  /** The status of each identity's key: from memory, else one query per 500 identities. */
  async statuses(ids: Iterable<string>): Promise<Map<string, DataKeyStatus>> {
    const out = new Map<string, DataKeyStatus>();
    const todo: string[] = [];
    for (const id of ids) {
      const c = this.cached(id);
      if (c) out.set(id, c);
      else todo.push(id);
    }
    for (const part of chunk(todo, 500)) {
      this.lookups++;
      const rows = await this.db.all<Row>(
        `SELECT identity_id, key_version, key_material, destroyed_at FROM identity_data_keys WHERE identity_id IN (${placeholders(part.length)})`,
        part,
      );
      const found = new Map(rows.map((r) => [r.identity_id, r]));
      for (const id of part) out.set(id, this.remember(id, this.fromRow(id, found.get(id))));
    }
    return out;
  }

  async status(id: string): Promise<DataKeyStatus> {
    return (await this.statuses([id])).get(id)!;
  }

  private async fresh(id: string): Promise<DataKeyStatus> {
    this.cache.delete(id);
    return this.status(id);
  }

  /** The key new personal values of this identity are encrypted with, created on first use. */
  async keyForWrite(id: string): Promise<{ version: number; key: Buffer }> {
    let s = this.cached(id);
    if (!s || s.state === 'missing') {
      // Most uncached writers are new identities (a hire): try to create the key first, one statement.
      const key = randomBytes(KEY_BYTES);
      this.lookups++;
      const created = await this.db.run(
        'INSERT INTO identity_data_keys (identity_id, key_version, key_material, created_at) VALUES (?, 1, ?, ?) ON CONFLICT (identity_id) DO NOTHING',
        [id, this.seal(id, 1, key), this.now()],
      );
      // Otherwise a key (or its tombstone) exists, perhaps created by a racing writer: that row is the key.
      s = created === 1 ? this.remember(id, { state: 'active', version: 1, key }) : await this.fresh(id);
    }
    if (s.state === 'active') return s;
    if (s.state === 'destroyed') throw new IdentityErasedError(id);
    throw new DataKeyUnavailableError(id, s.state === 'unusable' ? s.reason : 'no data key');
  }

  /**
   * Destroys the identity's key: the material is deleted, a tombstone row says when, so a later
   * read knows the values were erased rather than lost. Idempotent; also tombstones an identity
   * that never had a key (events written before encryption), so its reads are redacted too.
   */
  async destroy(id: string): Promise<void> {
    const now = this.now();
    await this.db.run(
      `INSERT INTO identity_data_keys (identity_id, key_version, key_material, created_at, destroyed_at) VALUES (?, 0, NULL, ?, ?)
       ON CONFLICT (identity_id) DO UPDATE SET key_material = NULL, destroyed_at = COALESCE(identity_data_keys.destroyed_at, excluded.destroyed_at)`,
      [id, now, now],
    );
    this.remember(id, { state: 'destroyed', destroyedAt: now });
  }

  /** Forgets what this process knows about a key (another process changed it). */
  evict(id: string): void {
    this.cache.delete(id);
  }

  private fromRow(id: string, r: Row | undefined): DataKeyStatus {
    if (!r) return { state: 'missing' };
    if (r.destroyed_at !== null && r.destroyed_at !== undefined) return { state: 'destroyed', destroyedAt: Number(r.destroyed_at) };
    if (!r.key_material) return { state: 'unusable', reason: 'the key row holds no material' };
    const version = Number(r.key_version);
    try {
      return { state: 'active', version, key: this.open(id, version, r.key_material) };
    } catch (e) {
      return { state: 'unusable', reason: (e as Error).message };
    }
  }

  private aad(id: string, version: number): Buffer {
    return Buffer.from(`idlc-data-key|${id}|${version}`, 'utf8');
  }

  private seal(id: string, version: number, key: Buffer): string {
    const kek = this.options.kek;
    if (!kek) return RAW + key.toString('base64');
    return WRAPPED + gcmSeal(kek, this.aad(id, version), key).toString('base64');
  }

  private open(id: string, version: number, material: string): Buffer {
    if (material.startsWith(RAW)) {
      const key = Buffer.from(material.slice(RAW.length), 'base64');
      if (key.length !== KEY_BYTES) throw new Error('the stored key has the wrong length');
      return key;
    }
    if (!material.startsWith(WRAPPED)) throw new Error('the stored key has an unknown format');
    const kek = this.options.kek;
    if (!kek) throw new Error('the data key is wrapped but DATA_KEY_ENCRYPTION_KEY is not set');
    const b = Buffer.from(material.slice(WRAPPED.length), 'base64');
    try {
      return gcmOpen(kek, this.aad(id, version), b);
    } catch {
      throw new Error('the data key does not open with DATA_KEY_ENCRYPTION_KEY (a different key-encryption key?)');
    }
  }

  /** Once a KEK is configured, keys stored before it are wrapped too (each row once; safe to race). */
  private async wrapRawKeys(): Promise<void> {
    const rows = await this.db.all<Row>(`SELECT identity_id, key_version, key_material, destroyed_at FROM identity_data_keys WHERE key_material LIKE 'raw:%'`);
    for (const r of rows) {
      const key = this.open(r.identity_id, Number(r.key_version), r.key_material!);
      await this.db.run('UPDATE identity_data_keys SET key_material = ? WHERE identity_id = ? AND key_material = ?', [
        this.seal(r.identity_id, Number(r.key_version), key),
        r.identity_id,
        r.key_material,
      ]);
    }
  }
}
