/**
 * In-process test identity providers (OIDC and SAML) producing real, cryptographically signed
 * credentials. Used by the sso-verification unit tests and by the engine's HTTP tests.
 *
 * - {@link TestOidcIdp}: serves a real JWKS (and optionally a discovery document) over HTTP on
 *   127.0.0.1 with an ephemeral port; signs ID tokens with RS256 / ES256 / PS256 / EdDSA (jose);
 *   key rotation; `alg: none` and HS256-with-the-public-key forgeries.
 * - {@link TestSamlIdp}: X.509 key/certificate (selfsigned), SAML 2.0 Responses signed with
 *   xml-crypto (assertion, response or both), overrides for every checked field, certificate
 *   rotation, and helpers for tampered / wrapped / comment-injected variants.
 * - {@link ManualClock}: an injectable clock the tests move by hand.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  UnsecuredJWT,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  type KeyLike,
} from 'jose';
import { SignedXml } from 'xml-crypto';
import { DOMParser, XMLSerializer, type Element, type Node } from '@xmldom/xmldom';
import { generate as generateSelfSigned } from 'selfsigned';
import type { Clock, TrustedIdpConfig } from '@idlc/sso-verification';

// ------------------------------------------------------------------------------------------------
// Clock
// ------------------------------------------------------------------------------------------------

/** A clock that only moves when told to. Starts at `start` (default: now, whole seconds). */
export class ManualClock implements Clock {
  private current: number;
  constructor(start: Date = new Date(Math.floor(Date.now() / 1000) * 1000)) {
    this.current = start.getTime();
  }
  now(): Date {
    return new Date(this.current);
  }
  advanceSeconds(seconds: number): this {
    this.current += seconds * 1000;
    return this;
  }
  set(date: Date): this {
    this.current = date.getTime();
    return this;
  }
}

// ------------------------------------------------------------------------------------------------
// OIDC
// ------------------------------------------------------------------------------------------------

export type TestJwsAlg = 'RS256' | 'ES256' | 'PS256' | 'EdDSA';

export interface TestJwk {
  kid: string;
  alg: TestJwsAlg;
  privateKey: KeyLike;
  publicKey: KeyLike;
  publicJwk: JWK;
  published: boolean;
}

export interface IdTokenOptions {
  /** Merged over the default claims; a value of `undefined` removes the claim. */
  claims?: Record<string, unknown>;
  /** Signing key (kid). Default: the most recently added published key of `alg` (any alg if unset). */
  kid?: string;
  alg?: TestJwsAlg;
  /** Extra/overriding protected header parameters (e.g. a different `kid` than the signing key). */
  header?: Record<string, unknown>;
  /** Base time for iat/exp. Default: now. Pass the verifier's clock time. */
  now?: Date;
  /** exp - iat. Default 300. */
  expiresInSeconds?: number;
}

export interface TestOidcIdpOptions {
  /** Serve `/.well-known/openid-configuration`. Default true. */
  discovery?: boolean;
  /** The client id the default `aud` names. Default `idlc-test-client`. */
  clientId?: string;
  /** Issuer path appended to `http://127.0.0.1:<port>` (e.g. `/realms/test`). Default ''. */
  issuerPath?: string;
  /** First key's algorithm (a key is created on start). Default RS256. */
  initialAlg?: TestJwsAlg;
  /** Default subject. Default `user-123`. */
  subject?: string;
}

export class TestOidcIdp {
  readonly keys: TestJwk[] = [];
  /** Requests served per path. */
  jwksRequests = 0;
  discoveryRequests = 0;
  /** When set, the JWKS endpoint answers with this HTTP status instead of the key set. */
  jwksFailureStatus: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    readonly clientId: string,
    readonly subject: string,
    private readonly serveDiscovery: boolean,
  ) {}

  static async start(opts: TestOidcIdpOptions = {}): Promise<TestOidcIdp> {
    let idp: TestOidcIdp | undefined;
    const server = createServer((req, res) => {
      if (!idp) {
        res.statusCode = 503;
        res.end();
        return;
      }
      idp.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    idp = new TestOidcIdp(
      server,
      `http://127.0.0.1:${port}${opts.issuerPath ?? ''}`,
      opts.clientId ?? 'idlc-test-client',
      opts.subject ?? 'user-123',
      opts.discovery ?? true,
    );
    await idp.addKey(opts.initialAlg ?? 'RS256');
    return idp;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  get discoveryUrl(): string {
    return `${this.issuer}/.well-known/openid-configuration`;
  }

  /** A config entry trusting this IdP (for parseIdpConfig / CredentialVerifier). */
  config(overrides: Partial<TrustedIdpConfig> & { id?: string } = {}): TrustedIdpConfig {
    const base: TrustedIdpConfig = {
      id: 'test-oidc',
      kind: 'oidc',
      issuer: this.issuer,
      jwksUri: this.jwksUri,
      audience: this.clientId,
    };
    const merged = { ...base, ...overrides } as TrustedIdpConfig & Record<string, unknown>;
    if (overrides.discoveryUrl !== undefined && overrides.jwksUri === undefined) delete merged.jwksUri;
    return merged;
  }

  /** Generates a key; published in the JWKS unless `publish: false`. Returns its kid. */
  async addKey(alg: TestJwsAlg = 'RS256', opts: { kid?: string; publish?: boolean } = {}): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = opts.kid ?? `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    this.keys.push({ kid, alg, privateKey, publicKey, publicJwk, published: opts.publish ?? true });
    return kid;
  }

  /** Removes a key from the JWKS (it can still sign: a token the verifier must refuse). */
  unpublishKey(kid: string): void {
    this.key(kid).published = false;
  }

  publishKey(kid: string): void {
    this.key(kid).published = true;
  }

  key(kid: string): TestJwk {
    const k = this.keys.find((x) => x.kid === kid);
    if (!k) throw new Error(`test IdP has no key ${kid}`);
    return k;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.filter((k) => k.published).map((k) => k.publicJwk) };
  }

  /** Default claims of an ID token at `now`. */
  defaultClaims(now: Date = new Date(), expiresInSeconds = 300): JWTPayload {
    const iat = Math.floor(now.getTime() / 1000);
    return {
      iss: this.issuer,
      sub: this.subject,
      aud: this.clientId,
      iat,
      exp: iat + expiresInSeconds,
      jti: randomUUID(),
      email: 'alice@example.com',
      email_verified: true,
      given_name: 'Alice',
      family_name: 'Example',
      name: 'Alice Example',
    };
  }

  private claimsFor(opts: IdTokenOptions): JWTPayload {
    const claims: Record<string, unknown> = {
      ...this.defaultClaims(opts.now, opts.expiresInSeconds),
      ...(opts.claims ?? {}),
    };
    for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
    return claims as JWTPayload;
  }

  /** A real signed ID token. */
  async signIdToken(opts: IdTokenOptions = {}): Promise<string> {
    const key = opts.kid
      ? this.key(opts.kid)
      : [...this.keys].reverse().find((k) => k.published && (opts.alg === undefined || k.alg === opts.alg));
    if (!key) throw new Error(`test IdP has no ${opts.alg ?? ''} key`);
    return new SignJWT(this.claimsFor(opts))
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(opts.header ?? {}) } as {
        alg: string;
      })
      .sign(key.privateKey);
  }

  /** `alg: none`, no signature. */
  unsignedIdToken(opts: IdTokenOptions = {}): string {
    return new UnsecuredJWT(this.claimsFor(opts)).encode();
  }

  /**
   * The classic key-confusion forgery: HS256 with the RSA public key (PEM text) as the HMAC secret,
   * naming the RSA key's kid.
   */
  async hs256WithPublicKey(opts: IdTokenOptions = {}): Promise<string> {
    const key = opts.kid ? this.key(opts.kid) : this.keys.find((k) => k.alg === 'RS256' && k.published);
    if (!key) throw new Error('test IdP has no RS256 key');
    const secret = new TextEncoder().encode(await exportSPKI(key.publicKey));
    return new SignJWT(this.claimsFor(opts))
      .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'JWT', ...(opts.header ?? {}) } as {
        alg: string;
      })
      .sign(secret);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', this.issuer).pathname;
    const issuerPath = new URL(this.issuer).pathname.replace(/\/$/, '');
    const send = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (path === `${issuerPath}/jwks`) {
      this.jwksRequests++;
      if (this.jwksFailureStatus !== undefined) return send(this.jwksFailureStatus, { error: 'down' });
      return send(200, this.jwks());
    }
    if (this.serveDiscovery && path === `${issuerPath}/.well-known/openid-configuration`) {
      this.discoveryRequests++;
      return send(200, {
        issuer: this.issuer,
        jwks_uri: this.jwksUri,
        authorization_endpoint: `${this.issuer}/authorize`,
        token_endpoint: `${this.issuer}/token`,
        response_types_supported: ['code', 'id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256', 'PS256', 'EdDSA'],
      });
    }
    return send(404, { error: 'not found' });
  }
}

// ------------------------------------------------------------------------------------------------
// SAML
// ------------------------------------------------------------------------------------------------

export const SAML_NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export const NAMEID_FORMAT = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;

export interface TestSigningCertificate {
  privateKeyPem: string;
  certificatePem: string;
}

/** A self-signed RSA-2048 / SHA-256 certificate for signing SAML messages in tests. */
export async function generateTestCertificate(commonName = 'idlc-test-idp'): Promise<TestSigningCertificate> {
  const now = new Date();
  const pems = await generateSelfSigned([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 24 * 3600 * 1000),
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600 * 1000),
  });
  return { privateKeyPem: pems.private, certificatePem: pems.cert };
}

export type SamlSignMode = 'assertion' | 'response' | 'both' | 'none';

export interface SamlResponseOptions {
  /** Assertion Issuer. Default: the IdP's issuer. */
  issuer?: string;
  /** Response Issuer; `null` omits it. Default: same as the assertion Issuer. */
  responseIssuer?: string | null;
  nameId?: string;
  nameIdFormat?: string;
  /** Audience; `null` omits the AudienceRestriction. Default: the SP entity id. */
  audience?: string | null;
  /** SubjectConfirmationData Recipient; `null` omits it. Default: the ACS URL. */
  recipient?: string | null;
  /** Response Destination; `null` omits it. Default: the ACS URL. */
  destination?: string | null;
  inResponseTo?: string;
  /** Base time. Default: now. */
  now?: Date;
  issueInstant?: Date;
  /** Conditions NotBefore; `null` omits. Default now - 30 s. */
  notBefore?: Date | null;
  /** Conditions NotOnOrAfter; `null` omits. Default now + 5 min. */
  notOnOrAfter?: Date | null;
  /** SubjectConfirmationData NotOnOrAfter; `null` omits. Default now + 5 min. */
  subjectNotOnOrAfter?: Date | null;
  assertionId?: string;
  responseId?: string;
  /** Attribute Name -> value(s). Default: email, givenName, surname, department (two values). */
  attributes?: Record<string, string | string[]>;
  /** FriendlyName per attribute Name. */
  friendlyNames?: Record<string, string>;
  sessionIndex?: string;
  statusCode?: string;
  /** Which parts to sign. Default 'assertion'. */
  sign?: SamlSignMode;
  /** Sign with this key/certificate instead of the IdP's current one. */
  signingKey?: TestSigningCertificate;
}

function esc(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const iso = (d: Date) => d.toISOString();
const newId = () => `_${randomUUID().replace(/-/g, '')}`;

export interface TestSamlIdpOptions {
  issuer?: string;
  spEntityId?: string;
  acsUrl?: string;
  nameId?: string;
}

export class TestSamlIdp {
  /** All generated signing keys, oldest first; the last one signs by default. */
  readonly signingKeys: TestSigningCertificate[] = [];

  private constructor(
    readonly issuer: string,
    readonly spEntityId: string,
    readonly acsUrl: string,
    readonly nameId: string,
  ) {}

  static async create(opts: TestSamlIdpOptions = {}): Promise<TestSamlIdp> {
    const idp = new TestSamlIdp(
      opts.issuer ?? 'https://saml-idp.test/metadata',
      opts.spEntityId ?? 'https://idlc.test/sp',
      opts.acsUrl ?? 'https://idlc.test/sso/saml/acs',
      opts.nameId ?? 'a1b2c3d4-persistent-id',
    );
    await idp.rotateKey();
    return idp;
  }

  get currentKey(): TestSigningCertificate {
    return this.signingKeys[this.signingKeys.length - 1] as TestSigningCertificate;
  }

  get certificatePem(): string {
    return this.currentKey.certificatePem;
  }

  /** Adds a new signing key/certificate that signs from now on. Returns the new certificate (PEM). */
  async rotateKey(): Promise<string> {
    const key = await generateTestCertificate(`idlc-test-idp-${this.signingKeys.length + 1}`);
    this.signingKeys.push(key);
    return key.certificatePem;
  }

  /** A config entry trusting this IdP's current certificate (override `signingCertificates` for rotation). */
  config(overrides: Partial<TrustedIdpConfig> = {}): TrustedIdpConfig {
    return {
      id: 'test-saml',
      kind: 'saml',
      issuer: this.issuer,
      spEntityId: this.spEntityId,
      acsUrl: this.acsUrl,
      signingCertificates: [this.certificatePem],
      ...overrides,
    };
  }

  /** The unsigned Response XML. */
  buildResponseXml(opts: SamlResponseOptions = {}): string {
    const now = opts.now ?? new Date();
    const issuer = opts.issuer ?? this.issuer;
    const responseIssuer = opts.responseIssuer === undefined ? issuer : opts.responseIssuer;
    const nameId = opts.nameId ?? this.nameId;
    const nameIdFormat = opts.nameIdFormat ?? NAMEID_FORMAT.persistent;
    const audience = opts.audience === undefined ? this.spEntityId : opts.audience;
    const recipient = opts.recipient === undefined ? this.acsUrl : opts.recipient;
    const destination = opts.destination === undefined ? this.acsUrl : opts.destination;
    const issueInstant = opts.issueInstant ?? now;
    const notBefore = opts.notBefore === undefined ? new Date(now.getTime() - 30_000) : opts.notBefore;
    const notOnOrAfter = opts.notOnOrAfter === undefined ? new Date(now.getTime() + 300_000) : opts.notOnOrAfter;
    const subjectNotOnOrAfter =
      opts.subjectNotOnOrAfter === undefined ? new Date(now.getTime() + 300_000) : opts.subjectNotOnOrAfter;
    const attributes = opts.attributes ?? {
      email: 'alice@example.com',
      givenName: 'Alice',
      surname: 'Example',
      department: ['Engineering', 'Research'],
    };
    const a = (name: string, value: string | null | undefined) =>
      value === null || value === undefined ? '' : ` ${name}="${esc(value)}"`;

    const attributeXml = Object.entries(attributes)
      .map(([name, value]) => {
        const values = (Array.isArray(value) ? value : [value])
          .map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`)
          .join('');
        return (
          `<saml:Attribute Name="${esc(name)}"${a('FriendlyName', opts.friendlyNames?.[name])}` +
          ` NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values}</saml:Attribute>`
        );
      })
      .join('');

    const conditions =
      notBefore === null && notOnOrAfter === null && audience === null
        ? ''
        : `<saml:Conditions${a('NotBefore', notBefore && iso(notBefore))}${a('NotOnOrAfter', notOnOrAfter && iso(notOnOrAfter))}>` +
          (audience === null
            ? ''
            : `<saml:AudienceRestriction><saml:Audience>${esc(audience)}</saml:Audience></saml:AudienceRestriction>`) +
          `</saml:Conditions>`;

    const assertion =
      `<saml:Assertion xmlns:saml="${SAML_NS.saml}" ID="${esc(opts.assertionId ?? newId())}" Version="2.0" IssueInstant="${iso(issueInstant)}">` +
      `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
      `<saml:Subject>` +
      `<saml:NameID Format="${esc(nameIdFormat)}">${esc(nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
      `<saml:SubjectConfirmationData${a('InResponseTo', opts.inResponseTo)}${a('NotOnOrAfter', subjectNotOnOrAfter && iso(subjectNotOnOrAfter))}${a('Recipient', recipient)}/>` +
      `</saml:SubjectConfirmation>` +
      `</saml:Subject>` +
      conditions +
      `<saml:AuthnStatement AuthnInstant="${iso(issueInstant)}" SessionIndex="${esc(opts.sessionIndex ?? newId())}">` +
      `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
      `</saml:AuthnStatement>` +
      (attributeXml ? `<saml:AttributeStatement>${attributeXml}</saml:AttributeStatement>` : '') +
      `</saml:Assertion>`;

    return (
      `<samlp:Response xmlns:samlp="${SAML_NS.samlp}" xmlns:saml="${SAML_NS.saml}" ID="${esc(opts.responseId ?? newId())}" Version="2.0" IssueInstant="${iso(issueInstant)}"${a('Destination', destination)}${a('InResponseTo', opts.inResponseTo)}>` +
      (responseIssuer === null ? '' : `<saml:Issuer>${esc(responseIssuer)}</saml:Issuer>`) +
      `<samlp:Status><samlp:StatusCode Value="${esc(opts.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success')}"/></samlp:Status>` +
      assertion +
      `</samlp:Response>`
    );
  }

  /** A Response signed per `opts.sign` (default: assertion only), as XML. */
  responseXml(opts: SamlResponseOptions = {}): string {
    const key = opts.signingKey ?? this.currentKey;
    const mode = opts.sign ?? 'assertion';
    let xml = this.buildResponseXml(opts);
    if (mode === 'assertion' || mode === 'both') xml = signAssertion(xml, key);
    if (mode === 'response' || mode === 'both') xml = signResponse(xml, key);
    return xml;
  }

  /** A Response signed per `opts.sign`, base64-encoded as posted in `SAMLResponse`. */
  response(opts: SamlResponseOptions = {}): string {
    return toBase64(this.responseXml(opts));
  }
}

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

function signer(key: TestSigningCertificate): SignedXml {
  return new SignedXml({
    privateKey: key.privateKeyPem,
    publicCert: key.certificatePem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
}

/** Signs the (first) Assertion: enveloped signature placed after its Issuer. */
export function signAssertion(xml: string, key: TestSigningCertificate): string {
  const sig = signer(key);
  const assertion = "/*[local-name(.)='Response']/*[local-name(.)='Assertion']";
  sig.addReference({ xpath: assertion, digestAlgorithm: SHA256, transforms: [ENVELOPED, EXC_C14N] });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `${assertion}/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

/** Signs the whole Response: enveloped signature after the Response Issuer (or first child). */
export function signResponse(xml: string, key: TestSigningCertificate): string {
  const sig = signer(key);
  const response = "/*[local-name(.)='Response']";
  sig.addReference({ xpath: response, digestAlgorithm: SHA256, transforms: [ENVELOPED, EXC_C14N] });
  const hasIssuer = /<samlp:Response[^>]*><saml:Issuer>/.test(xml);
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: hasIssuer
      ? { reference: `${response}/*[local-name(.)='Issuer']`, action: 'after' }
      : { reference: response, action: 'prepend' },
  });
  return sig.getSignedXml();
}

export function toBase64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

export function fromBase64(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}

// ------------------------------------------------------------------------------------------------
// Attack helpers (operate on signed XML; return XML)
// ------------------------------------------------------------------------------------------------

/** Replaces the first occurrence of `search` (must exist) — e.g. change a value after signing. */
export function tamper(xml: string, search: string, replacement: string): string {
  const i = xml.indexOf(search);
  if (i < 0) throw new Error(`tamper: "${search}" not found`);
  return xml.slice(0, i) + replacement + xml.slice(i + search.length);
}

/**
 * `user@example.com.evil.com` -> `user@example.com<!---->.evil.com` inside the NameID: exclusive
 * c14n drops comments, so the signature stays valid; a parser reading only the first text node
 * would see `user@example.com`.
 */
export function injectCommentInNameId(xml: string, nameId: string, splitAt: number): string {
  const target = `>${esc(nameId)}</saml:NameID>`;
  return tamper(xml, target, `>${esc(nameId.slice(0, splitAt))}<!---->${esc(nameId.slice(splitAt))}</saml:NameID>`);
}

export type WrapMode =
  /** An unsigned evil Assertion inserted before the signed one (two assertions in the Response). */
  | 'sibling-before'
  /** An unsigned evil Assertion appended after the signed one. */
  | 'sibling-after'
  /** The evil Assertion replaces the signed one, which is hidden in the evil one's <Advice>. */
  | 'advice'
  /** The evil Assertion replaces the signed one and carries a copy of its Signature. */
  | 'copied-signature';

/**
 * XML signature wrapping: forges an unsigned Assertion with `evilNameId` (and a fresh ID) around
 * or beside the validly signed one.
 */
export function wrapAssertion(signedXml: string, evilNameId: string, mode: WrapMode): string {
  const doc = new DOMParser().parseFromString(signedXml, 'text/xml');
  const response = doc.documentElement as Element;
  const original = firstChild(response, SAML_NS.saml, 'Assertion');
  const evil = original.cloneNode(true) as Element;
  evil.setAttribute('ID', newId());
  const evilSig = firstChildOrNull(evil, SAML_NS.ds, 'Signature');
  if (evilSig && mode !== 'copied-signature') evil.removeChild(evilSig);
  const subject = firstChild(evil, SAML_NS.saml, 'Subject');
  const nameIdEl = firstChild(subject, SAML_NS.saml, 'NameID');
  while (nameIdEl.firstChild) nameIdEl.removeChild(nameIdEl.firstChild);
  nameIdEl.appendChild(doc.createTextNode(evilNameId));

  switch (mode) {
    case 'sibling-before':
      response.insertBefore(evil, original);
      break;
    case 'sibling-after':
      response.appendChild(evil);
      break;
    case 'advice': {
      response.replaceChild(evil, original);
      const advice = doc.createElementNS(SAML_NS.saml, 'saml:Advice');
      advice.appendChild(original);
      const conditions = firstChildOrNull(evil, SAML_NS.saml, 'Conditions');
      evil.insertBefore(advice, conditions ? conditions.nextSibling : null);
      break;
    }
    case 'copied-signature': {
      response.replaceChild(evil, original);
      // keep the original (with its ID) somewhere in the document so the reference resolves
      const holder = doc.createElementNS(SAML_NS.samlp, 'samlp:Extensions');
      holder.appendChild(original);
      response.insertBefore(holder, evil);
      break;
    }
  }
  return new XMLSerializer().serializeToString(doc);
}

function firstChildOrNull(parent: Node, ns: string, localName: string): Element | null {
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName) {
      return n as Element;
    }
  }
  return null;
}

function firstChild(parent: Node, ns: string, localName: string): Element {
  const el = firstChildOrNull(parent, ns, localName);
  if (!el) throw new Error(`no <${localName}> child`);
  return el;
}

/** Removes every ds:Signature (an attacker stripping signatures). */
export function stripSignatures(xml: string): string {
  return xml.replace(/<ds:Signature\b[\s\S]*?<\/ds:Signature>/g, '');
}
