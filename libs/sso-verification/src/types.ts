/**
 * Public types of the SSO credential verification library.
 *
 * The library is pure: no NestJS, no database. Everything time-related goes through an injected
 * {@link Clock}, everything network-related through an injectable `fetch`.
 */

export type IdpKind = 'oidc' | 'saml';

export interface TrustedIdpConfig {
  /** Short name used in keys and metadata (`[A-Za-z0-9_.-]`, 1..64 characters, unique). */
  id: string;
  kind: IdpKind;
  /** OIDC `iss` / SAML Issuer (entity id). Unique per kind. */
  issuer: string;

  // --- OIDC -------------------------------------------------------------------------------
  /** JWKS endpoint. Exactly one of `jwksUri` / `discoveryUrl` for OIDC. */
  jwksUri?: string;
  /** OpenID discovery document; its `jwks_uri` is used and its `issuer` must equal `issuer`. */
  discoveryUrl?: string;
  /** Expected `aud` (our client id or ids). Required for OIDC. */
  audience?: string | string[];
  /** Default `['RS256','ES256','PS256','EdDSA']`. Asymmetric algorithms only: never `none`, never HS*. */
  allowedAlgorithms?: string[];

  // --- SAML -------------------------------------------------------------------------------
  /** Our SP entity id: the expected `Audience`. Required for SAML. */
  spEntityId?: string;
  /** Our ACS URL: the expected SubjectConfirmationData `Recipient` and Response `Destination`. Required for SAML. */
  acsUrl?: string;
  /** IdP signing certificates (PEM, or bare base64 DER as in metadata). Several at once for rotation. */
  signingCertificates?: string[];
  /**
   * Require the Assertion itself to carry a valid signature (default `true`). When `false`, a valid
   * signature over the whole Response (which covers the assertion) is accepted instead.
   */
  wantAssertionsSigned?: boolean;
  /** Require a valid signature over the whole Response (default `false`). */
  wantResponseSigned?: boolean;

  // --- common -----------------------------------------------------------------------------
  /** Allowed clock skew in seconds (default 60, max 600). */
  clockSkewSeconds?: number;
  /** Allowed email domains, exact match, case-insensitive. Empty/undefined = any. */
  allowedEmailDomains?: string[];
  /**
   * Claim name (OIDC) or SAML attribute Name (or FriendlyName) -> engine attribute
   * (email, givenName, familyName, displayName, department, title, employeeId, ...).
   */
  attributeMapping?: Record<string, string>;
  /** Carried through, used by the caller. */
  jit?: boolean;
  /** Carried through, used by the caller. */
  defaultRole?: string;
}

export interface VerifiedLogin {
  idpId: string;
  kind: IdpKind;
  issuer: string;
  /** OIDC `sub` / SAML NameID (persistent). Key users by issuer + subject, never by email. */
  subject: string;
  /** `jti` or assertion ID (for replay protection); for OIDC without `jti`, `sha256:` + hash of the token. */
  credentialId: string;
  /**
   * End of the credential's acceptance window (credential expiry + the IdP's clock skew): the replay
   * cache must remember `credentialId` at least until then.
   */
  expiresAt: Date;
  issuedAt?: Date;
  /** From the attribute mapping (`email`), else the standard `email` claim (OIDC) / an emailAddress NameID (SAML). */
  email?: string;
  /** Mapped engine attributes only. */
  attributes: Record<string, string>;
  /** For audit. OIDC: the JWT claims. SAML: issuer, nameID, nameIDFormat, sessionIndex, attributes, ... */
  rawClaims: Record<string, unknown>;
  /** SAML only: the RelayState posted with the response, passed through untouched (not verified). */
  relayState?: string;
}

export type RefusalType =
  | 'invalid_signature'
  | 'expired'
  | 'wrong_audience'
  | 'unknown_issuer'
  | 'replayed'
  | 'domain_not_allowed'
  | 'malformed';

/** A credential was refused. `type` is stable (map it to an HTTP status / audit code); `detail` is for logs. */
export class LoginRefused extends Error {
  /** The trusted IdP the credential named, once the verifier knew it (metrics, logs). */
  idpId?: string;

  constructor(
    public readonly type: RefusalType,
    public readonly detail: string,
  ) {
    super(`login refused (${type}): ${detail}`);
    this.name = 'LoginRefused';
  }
}

/**
 * The credential could not be checked because the IdP's keys could not be obtained (JWKS or discovery
 * endpoint down, invalid JWKS document). Not the user's fault: map to 502/503, not 401.
 */
export class IdpUnavailableError extends Error {
  constructor(
    public readonly idpId: string,
    public readonly detail: string,
  ) {
    super(`identity provider "${idpId}" unavailable: ${detail}`);
    this.name = 'IdpUnavailableError';
  }
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The engine backs this by a DB table; {@link InMemoryReplayCache} is the in-process implementation. */
export interface ReplayCache {
  /** Records (issuer, credentialId) until `expiresAt`. Resolves `false` if it was already used. */
  claim(issuer: string, credentialId: string, expiresAt: Date): Promise<boolean>;
}
