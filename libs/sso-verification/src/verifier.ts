import type { SAML } from '@node-saml/node-saml';
import { parseIdpConfig } from './config';
import { RemoteKeySet } from './jwks';
import { peekIssuer, verifyOidcToken } from './oidc';
import { InMemoryReplayCache } from './replay-cache';
import { createNodeSaml, peekSamlResponse, verifySamlResponse } from './saml';
import {
  LoginRefused,
  type Clock,
  type ReplayCache,
  type TrustedIdpConfig,
  type VerifiedLogin,
} from './types';

export interface CredentialVerifierOptions {
  clock: Clock;
  /** Used for JWKS and discovery documents. Default: global `fetch`. */
  fetch?: typeof fetch;
  /** Default: an {@link InMemoryReplayCache} on the injected clock. */
  replayCache?: ReplayCache;
  /** An unknown `kid` triggers a JWKS refetch at most once per this many seconds per IdP. Default 30. */
  jwksCooldownSeconds?: number;
  /** Cached JWKS are refreshed when older than this. Default 600. */
  jwksMaxAgeSeconds?: number;
  /** After a failed JWKS/discovery fetch, no new attempt for this many seconds. Default 5. */
  jwksFailureBackoffSeconds?: number;
  /** Timeout of JWKS/discovery requests. Default 5000 ms. */
  httpTimeoutMs?: number;
}

/**
 * Turns a credential posted by an IdP login hook into a {@link VerifiedLogin}, or throws
 * {@link LoginRefused} (typed refusal) — or `IdpUnavailableError` when the IdP's keys cannot be fetched.
 * The IdP list is validated with {@link parseIdpConfig} on construction.
 */
export class CredentialVerifier {
  private readonly idps: readonly TrustedIdpConfig[];
  private readonly oidcByIssuer = new Map<string, TrustedIdpConfig>();
  private readonly samlByIssuer = new Map<string, TrustedIdpConfig>();
  private readonly keySets = new Map<string, RemoteKeySet>();
  private readonly samlInstances = new Map<string, SAML>();
  private readonly replayCache: ReplayCache;
  private readonly clock: Clock;

  constructor(idps: TrustedIdpConfig[], opts: CredentialVerifierOptions) {
    if (!opts?.clock) throw new Error('CredentialVerifier: opts.clock is required');
    this.clock = opts.clock;
    this.idps = Object.freeze(parseIdpConfig(idps));
    this.replayCache = opts.replayCache ?? new InMemoryReplayCache(opts.clock);
    const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
    for (const idp of this.idps) {
      if (idp.kind === 'oidc') {
        this.oidcByIssuer.set(idp.issuer, idp);
        this.keySets.set(
          idp.id,
          new RemoteKeySet(idp, {
            clock: opts.clock,
            fetch: fetchFn,
            cooldownMs: (opts.jwksCooldownSeconds ?? 30) * 1000,
            maxAgeMs: (opts.jwksMaxAgeSeconds ?? 600) * 1000,
            failureBackoffMs: (opts.jwksFailureBackoffSeconds ?? 5) * 1000,
            timeoutMs: opts.httpTimeoutMs ?? 5000,
          }),
        );
      } else {
        this.samlByIssuer.set(idp.issuer, idp);
      }
    }
  }

  /** The validated, normalised configuration of an IdP (for `jit`, `defaultRole`, ...). */
  getIdp(idpId: string): TrustedIdpConfig | undefined {
    return this.idps.find((i) => i.id === idpId);
  }

  async verifyOidc(idToken: string): Promise<VerifiedLogin> {
    const iss = peekIssuer(idToken);
    const idp = this.oidcByIssuer.get(iss);
    if (!idp) throw new LoginRefused('unknown_issuer', `no trusted OIDC IdP has issuer "${iss}"`);
    const keySet = this.keySets.get(idp.id) as RemoteKeySet;
    return attributed(idp.id, async () => this.claimOnce(await verifyOidcToken({ idp, keySet, clock: this.clock }, idToken)));
  }

  async verifySaml(samlResponseBase64: string, relayState?: string): Promise<VerifiedLogin> {
    const peeked = peekSamlResponse(samlResponseBase64);
    const idp = this.samlByIssuer.get(peeked.issuer);
    if (!idp) throw new LoginRefused('unknown_issuer', `no trusted SAML IdP has issuer "${peeked.issuer}"`);
    return attributed(idp.id, async () =>
      this.claimOnce(await verifySamlResponse({ idp, clock: this.clock, samlFor: (i, signed) => this.samlFor(i, signed) }, peeked, samlResponseBase64, relayState)),
    );
  }

  /** Number of JWKS documents fetched for an OIDC IdP (diagnostics). */
  jwksFetchCount(idpId: string): number {
    return this.keySets.get(idpId)?.fetchCount ?? 0;
  }

  private async claimOnce(login: VerifiedLogin): Promise<VerifiedLogin> {
    const fresh = await this.replayCache.claim(login.issuer, login.credentialId, login.expiresAt);
    if (!fresh) {
      throw new LoginRefused('replayed', `credential ${login.credentialId} from ${login.issuer} was already used`);
    }
    return login;
  }

  private samlFor(idp: TrustedIdpConfig, wantAuthnResponseSigned: boolean): SAML {
    const key = `${idp.id}\u0000${wantAuthnResponseSigned}`;
    let saml = this.samlInstances.get(key);
    if (!saml) {
      saml = createNodeSaml(idp, wantAuthnResponseSigned);
      this.samlInstances.set(key, saml);
    }
    return saml;
  }
}

/** Runs a verification step of a known IdP: a refusal it throws names that IdP. */
async function attributed<T>(idpId: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof LoginRefused) e.idpId ??= idpId;
    throw e;
  }
}
