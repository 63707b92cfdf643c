import type { Clock } from '@idlc/domain';
import type { SqlDatabase } from '@idlc/sql';
import { hash as cryptoHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a credential may do. Each route group asks for exactly one of these. */
export const SCOPES = ['hr:write', 'sso:login', 'scim', 'audit:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

export interface Credential {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface CreatedCredential extends Credential {
  /** The bearer token: shown once, never stored (only the SHA-256 of its secret part is). */
  token: string;
}

export class CredentialError extends Error {}

const DDL = `
CREATE TABLE IF NOT EXISTS api_credentials (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scopes TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  last_used_at BIGINT
);`;

// idlc_<16 hex id>_<43 base64url chars = 256 random bits>. The id finds the row; the secret is checked.
const TOKEN = /^idlc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ID = /^[0-9a-f]{16}$/;

interface Row {
  id: string;
  name: string;
  scopes: string;
  secret_sha256: string;
  created_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
  last_used_at: number | string | null;
}

const iso = (v: number | string | null) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());
// One-shot: a Hash object per request costs several times the digest itself.
const sha256 = (s: string) => cryptoHash('sha256', s, 'buffer');

function toCredential(r: Row): Credential {
  return {
    id: r.id,
    name: r.name,
    scopes: JSON.parse(r.scopes),
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at),
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
  };
}

interface CacheEntry {
  row: Row;
  loadedAt: number;
  /** Derived once per load, not per request: the stored hash as bytes and the public view. */
  secret: Buffer;
  credential: Credential;
}

export interface CredentialStoreOptions {
  /**
   * How long a looked-up row is trusted before it is read again: a revocation made by another
   * process (the CLI, another API instance) takes effect within this window. Default 5 s.
   */
  cacheMs?: number;
  /** last_used_at is written at most this often per credential, off the request path. Default 60 s. */
  touchEveryMs?: number;
}

/**
 * API credentials with scopes. Secrets are 256-bit random values, so a single SHA-256 is a safe
 * stored form (no password-style KDF needed) and keeps authentication off the hot path's budget.
 * Comparison is constant-time, and an unknown id still costs one comparison.
 */
export class CredentialStore {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly touched = new Map<string, number>();
  private readonly cacheMs: number;
  private readonly touchEveryMs: number;

  private constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
    options: CredentialStoreOptions,
  ) {
    this.cacheMs = options.cacheMs ?? 5_000;
    this.touchEveryMs = options.touchEveryMs ?? 60_000;
  }

  static async open(db: SqlDatabase, clock: Clock, options: CredentialStoreOptions = {}): Promise<CredentialStore> {
    await db.exec(DDL);
    return new CredentialStore(db, clock, options);
  }

  async create(input: { name: string; scopes: string[]; expiresAt?: Date }): Promise<CreatedCredential> {
    const name = input.name?.trim();
    if (!name || name.length > 100 || /[\u0000-\u001f]/.test(name)) throw new CredentialError('name must be 1-100 printable characters');
    if (!input.scopes?.length) throw new CredentialError(`at least one scope is required (${SCOPES.join(', ')})`);
    const bad = input.scopes.filter((s) => !isScope(s));
    if (bad.length) throw new CredentialError(`unknown scope ${bad.map((s) => JSON.stringify(s)).join(', ')} (known: ${SCOPES.join(', ')})`);
    const scopes = SCOPES.filter((s) => input.scopes.includes(s));
    const now = this.clock.now().getTime();
    if (input.expiresAt && !(input.expiresAt.getTime() > now)) throw new CredentialError('expiry must be in the future');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    await this.db.run(
      'INSERT INTO api_credentials (id, name, scopes, secret_sha256, created_at, expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)',
      [id, name, JSON.stringify(scopes), sha256(secret).toString('hex'), now, input.expiresAt?.getTime() ?? null],
    );
    const created = (await this.get(id))!;
    return { ...created, token: `idlc_${id}_${secret}` };
  }

  async get(id: string): Promise<Credential | undefined> {
    const row = await this.db.get<Row>('SELECT * FROM api_credentials WHERE id = ?', [id]);
    return row && toCredential(row);
  }

  async list(): Promise<Credential[]> {
    return (await this.db.all<Row>('SELECT * FROM api_credentials ORDER BY created_at, id')).map(toCredential);
  }

  /** Revokes at once in this process, within the cache window elsewhere. Returns undefined for an unknown (or malformed) id. */
  async revoke(id: string): Promise<Credential | undefined> {
    if (!ID.test(id)) return undefined;
    await this.db.run('UPDATE api_credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [this.clock.now().getTime(), id]);
    this.cache.delete(id);
    return this.get(id);
  }

  /**
   * The credential a bearer token belongs to, or undefined when the token is malformed, unknown,
   * wrong, revoked or expired (callers answer 401 without saying which).
   */
  async authenticate(token: string): Promise<Credential | undefined> {
    const m = TOKEN.exec(token);
    const given = sha256(m ? m[2] : token);
    const entry = m ? await this.lookup(m[1]) : undefined;
    // Compared even for an unknown id, against a dummy: the time does not tell which ids exist.
    if (!timingSafeEqual(given, entry ? entry.secret : DUMMY) || !entry) return undefined;
    const row = entry.row;
    const now = this.clock.now().getTime();
    if (row.revoked_at !== null && row.revoked_at !== undefined) return undefined;
    if (row.expires_at !== null && row.expires_at !== undefined && Number(row.expires_at) <= now) return undefined;
    this.touch(row.id, now);
    return entry.credential;
  }

  private async lookup(id: string): Promise<CacheEntry | undefined> {
    const now = this.clock.now().getTime();
    const hit = this.cache.get(id);
    if (hit && now - hit.loadedAt < this.cacheMs) return hit;
    const row = await this.db.get<Row>('SELECT * FROM api_credentials WHERE id = ?', [id]);
    // Bounded: unknown ids are not remembered, so random tokens cannot grow the map.
    if (!row) {
      this.cache.delete(id);
      return undefined;
    }
    const entry = { row, loadedAt: now, secret: Buffer.from(row.secret_sha256, 'hex'), credential: toCredential(row) };
    this.cache.set(id, entry);
    return entry;
  }

  private touch(id: string, now: number): void {
    const last = this.touched.get(id);
    if (last !== undefined && now - last < this.touchEveryMs) return;
    this.touched.set(id, now);
    void this.db.run('UPDATE api_credentials SET last_used_at = ? WHERE id = ?', [now, id]).catch(() => undefined);
  }
}

const DUMMY = Buffer.alloc(32);
