import { createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import { IdpUnavailableError, type Clock, type TrustedIdpConfig } from './types';

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface RemoteKeySetOptions {
  clock: Clock;
  fetch: typeof fetch;
  /** After a fetch, an unknown `kid` does not trigger another fetch for this long. */
  cooldownMs: number;
  /** Keys older than this are refreshed before use (stale keys are kept if the refresh fails). */
  maxAgeMs: number;
  /** After a failed fetch, no new fetch is attempted for this long (cached keys stay in use). */
  failureBackoffMs: number;
  timeoutMs: number;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;
const ASYMMETRIC_KTY = new Set(['RSA', 'EC', 'OKP']);

function isAllowedUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const u = new URL(value);
    if (u.protocol === 'https:') return true;
    return (
      u.protocol === 'http:' &&
      (u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]')
    );
  } catch {
    return false;
  }
}

/**
 * The JWKS of one OIDC IdP, fetched with the injected `fetch`, cached, refreshed when stale, and
 * refetched at most once per cooldown when a token names a key we do not have (key rotation).
 * Concurrent fetches are coalesced. Time comes from the injected clock.
 */
export class RemoteKeySet {
  private resolver?: KeyResolver;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  private lastFailure = '';
  private inflight: Promise<KeyResolver> | undefined;
  private jwksUri: string | undefined;
  private discoveryFetchedAt = Number.NEGATIVE_INFINITY;
  /** Number of JWKS documents fetched successfully (diagnostics/tests). */
  fetchCount = 0;

  constructor(
    private readonly idp: TrustedIdpConfig,
    private readonly opts: RemoteKeySetOptions,
  ) {
    this.jwksUri = idp.jwksUri;
  }

  private now(): number {
    return this.opts.clock.now().getTime();
  }

  /** Keys to verify with: cached, or fetched now if none yet / older than maxAge. */
  async current(): Promise<KeyResolver> {
    if (!this.resolver) return this.refresh();
    if (this.now() - this.fetchedAt > this.opts.maxAgeMs) {
      try {
        return await this.refresh();
      } catch {
        return this.resolver; // keep verifying with the stale keys while the IdP is unreachable
      }
    }
    return this.resolver;
  }

  /**
   * Called when no cached key matches the token. Refetches unless a fetch happened within the
   * cooldown; returns `undefined` when rate-limited.
   */
  async refetchForUnknownKey(): Promise<KeyResolver | undefined> {
    if (this.inflight) return this.inflight;
    const now = this.now();
    if (now - this.fetchedAt < this.opts.cooldownMs) return undefined;
    if (now - this.failedAt < this.opts.failureBackoffMs) return undefined;
    return this.refresh();
  }

  private refresh(): Promise<KeyResolver> {
    if (this.inflight) return this.inflight;
    if (this.now() - this.failedAt < this.opts.failureBackoffMs) {
      return Promise.reject(new IdpUnavailableError(this.idp.id, `${this.lastFailure} (backing off)`));
    }
    this.inflight = this.load()
      .then((resolver) => {
        this.resolver = resolver;
        this.fetchedAt = this.now();
        this.fetchCount++;
        return resolver;
      })
      .catch((e: unknown) => {
        this.failedAt = this.now();
        this.lastFailure = e instanceof IdpUnavailableError ? e.detail : String((e as Error)?.message ?? e);
        throw e instanceof IdpUnavailableError ? e : new IdpUnavailableError(this.idp.id, this.lastFailure);
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async load(): Promise<KeyResolver> {
    const jwksUri = await this.resolveJwksUri();
    const doc = await this.fetchJson(jwksUri, 'JWKS');
    const keys = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) {
      throw new IdpUnavailableError(this.idp.id, `JWKS at ${jwksUri} has no "keys" array`);
    }
    // Only public asymmetric keys: an "oct" key in a JWKS would otherwise be a shared secret.
    const usable = keys.filter(
      (k): k is JWK =>
        typeof k === 'object' && k !== null && ASYMMETRIC_KTY.has((k as JWK).kty as string) && !('d' in k),
    );
    const jwks: JSONWebKeySet = { keys: usable };
    try {
      return createLocalJWKSet(jwks);
    } catch (e) {
      throw new IdpUnavailableError(this.idp.id, `invalid JWKS at ${jwksUri}: ${(e as Error).message}`);
    }
  }

  private async resolveJwksUri(): Promise<string> {
    const discoveryUrl = this.idp.discoveryUrl;
    if (!discoveryUrl) return this.jwksUri as string;
    if (this.jwksUri && this.now() - this.discoveryFetchedAt <= this.opts.maxAgeMs) return this.jwksUri;
    try {
      const doc = (await this.fetchJson(discoveryUrl, 'discovery document')) as Record<string, unknown>;
      if (doc.issuer !== this.idp.issuer) {
        throw new IdpUnavailableError(
          this.idp.id,
          `discovery document issuer "${String(doc.issuer)}" does not match configured issuer "${this.idp.issuer}"`,
        );
      }
      if (!isAllowedUrl(doc.jwks_uri)) {
        throw new IdpUnavailableError(this.idp.id, 'discovery document has no usable https jwks_uri');
      }
      this.jwksUri = doc.jwks_uri;
      this.discoveryFetchedAt = this.now();
      return this.jwksUri;
    } catch (e) {
      if (this.jwksUri) return this.jwksUri; // keep the previously discovered endpoint
      throw e;
    }
  }

  private async fetchJson(url: string, what: string): Promise<unknown> {
    let res: Response;
    try {
      res = await this.opts.fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (e) {
      throw new IdpUnavailableError(this.idp.id, `fetching ${what} ${url} failed: ${(e as Error).message}`);
    }
    if (!res.ok) {
      throw new IdpUnavailableError(this.idp.id, `fetching ${what} ${url} returned HTTP ${res.status}`);
    }
    const text = await res.text();
    if (text.length > MAX_DOCUMENT_BYTES) {
      throw new IdpUnavailableError(this.idp.id, `${what} at ${url} is too large`);
    }
    try {
      const json: unknown = JSON.parse(text);
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
      return json;
    } catch (e) {
      throw new IdpUnavailableError(this.idp.id, `${what} at ${url} is not a JSON object: ${(e as Error).message}`);
    }
  }
}
