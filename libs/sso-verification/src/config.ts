import { X509Certificate } from 'node:crypto';
import type { IdpKind, TrustedIdpConfig } from './types';

/** Asymmetric JWS algorithms we are willing to accept at all (never `none`, never HS*). */
export const SUPPORTED_OIDC_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];
export const DEFAULT_OIDC_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'PS256', 'EdDSA'];
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
export const MAX_CLOCK_SKEW_SECONDS = 600;

/** Thrown by {@link parseIdpConfig}; names the IdP and the offending field. */
export class IdpConfigError extends Error {
  constructor(
    public readonly idp: string,
    public readonly field: string,
    public readonly problem: string,
  ) {
    super(`IdP config ${idp}: field "${field}" ${problem}`);
    this.name = 'IdpConfigError';
  }
}

const COMMON_FIELDS = [
  'id',
  'kind',
  'issuer',
  'clockSkewSeconds',
  'allowedEmailDomains',
  'attributeMapping',
  'jit',
  'defaultRole',
];
const OIDC_FIELDS = ['jwksUri', 'discoveryUrl', 'audience', 'allowedAlgorithms'];
const SAML_FIELDS = [
  'spEntityId',
  'acsUrl',
  'signingCertificates',
  'wantAssertionsSigned',
  'wantResponseSigned',
];

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}

/**
 * Validates and normalises the trusted IdP list. Accepts an array of IdP objects (e.g. parsed JSON).
 * Returns frozen, normalised copies with defaults filled in (`clockSkewSeconds`, OIDC
 * `allowedAlgorithms`, SAML `wantAssertionsSigned` / `wantResponseSigned`; certificates as PEM;
 * email domains lower-cased). Throws {@link IdpConfigError} naming the IdP and the bad field.
 */
export function parseIdpConfig(json: unknown): TrustedIdpConfig[] {
  if (!Array.isArray(json)) {
    throw new IdpConfigError('(list)', '(root)', 'must be an array of IdP objects');
  }
  const result: TrustedIdpConfig[] = [];
  const ids = new Set<string>();
  const issuers = new Set<string>();
  json.forEach((raw, index) => {
    const cfg = parseOne(raw, index);
    if (ids.has(cfg.id)) {
      throw new IdpConfigError(`"${cfg.id}" (index ${index})`, 'id', 'is used by more than one IdP');
    }
    const issuerKey = `${cfg.kind} ${cfg.issuer}`;
    if (issuers.has(issuerKey)) {
      throw new IdpConfigError(
        `"${cfg.id}" (index ${index})`,
        'issuer',
        `is used by more than one ${cfg.kind} IdP`,
      );
    }
    ids.add(cfg.id);
    issuers.add(issuerKey);
    result.push(cfg);
  });
  return result;
}

function parseOne(raw: unknown, index: number): TrustedIdpConfig {
  const unnamed = `#${index}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new IdpConfigError(unnamed, '(entry)', 'must be an object');
  }
  const obj = raw as Record<string, unknown>;
  const idValue = obj.id;
  if (typeof idValue !== 'string' || !ID_PATTERN.test(idValue)) {
    throw new IdpConfigError(unnamed, 'id', 'must be a string of 1..64 characters [A-Za-z0-9_.-]');
  }
  const name = `"${idValue}" (index ${index})`;
  const fail = (field: string, problem: string): never => {
    throw new IdpConfigError(name, field, problem);
  };

  const kind = obj.kind;
  if (kind !== 'oidc' && kind !== 'saml') fail('kind', 'must be "oidc" or "saml"');
  const k = kind as IdpKind;

  const allowed = new Set([...COMMON_FIELDS, ...(k === 'oidc' ? OIDC_FIELDS : SAML_FIELDS)]);
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) {
      const other = k === 'oidc' ? SAML_FIELDS : OIDC_FIELDS;
      fail(key, other.includes(key) ? `is not valid for a ${k} IdP` : 'is not a known field');
    }
  }

  const issuer = obj.issuer;
  if (typeof issuer !== 'string' || issuer.trim() === '' || issuer !== issuer.trim()) {
    fail('issuer', 'must be a non-empty string without surrounding whitespace');
  }

  const cfg: TrustedIdpConfig = { id: idValue, kind: k, issuer: issuer as string };

  // common -----------------------------------------------------------------------------------
  if (obj.clockSkewSeconds === undefined) {
    cfg.clockSkewSeconds = DEFAULT_CLOCK_SKEW_SECONDS;
  } else {
    const s = obj.clockSkewSeconds;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0 || s > MAX_CLOCK_SKEW_SECONDS) {
      fail('clockSkewSeconds', `must be a number between 0 and ${MAX_CLOCK_SKEW_SECONDS}`);
    }
    cfg.clockSkewSeconds = s as number;
  }

  if (obj.allowedEmailDomains !== undefined) {
    const list = obj.allowedEmailDomains;
    if (!Array.isArray(list)) fail('allowedEmailDomains', 'must be an array of domain names');
    cfg.allowedEmailDomains = (list as unknown[]).map((d, i) => {
      if (typeof d !== 'string') return fail(`allowedEmailDomains[${i}]`, 'must be a string');
      const norm = d.trim().toLowerCase();
      if (!DOMAIN_PATTERN.test(norm)) {
        return fail(`allowedEmailDomains[${i}]`, `"${d}" is not a domain name (no "@", no leading dot)`);
      }
      return norm;
    });
  }

  if (obj.attributeMapping !== undefined) {
    const m = obj.attributeMapping;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      fail('attributeMapping', 'must be an object mapping claim/attribute names to engine attributes');
    }
    const mapping: Record<string, string> = {};
    for (const [from, to] of Object.entries(m as Record<string, unknown>)) {
      if (from === '' || typeof to !== 'string' || to.trim() === '') {
        fail(`attributeMapping.${from}`, 'must map a non-empty name to a non-empty engine attribute name');
      }
      mapping[from] = to as string;
    }
    cfg.attributeMapping = mapping;
  }

  if (obj.jit !== undefined) {
    if (typeof obj.jit !== 'boolean') fail('jit', 'must be a boolean');
    cfg.jit = obj.jit as boolean;
  }
  if (obj.defaultRole !== undefined) {
    if (typeof obj.defaultRole !== 'string' || obj.defaultRole.trim() === '') {
      fail('defaultRole', 'must be a non-empty string');
    }
    cfg.defaultRole = obj.defaultRole as string;
  }

  if (k === 'oidc') parseOidc(obj, cfg, fail);
  else parseSaml(obj, cfg, fail);

  if (cfg.allowedEmailDomains) Object.freeze(cfg.allowedEmailDomains);
  if (cfg.allowedAlgorithms) Object.freeze(cfg.allowedAlgorithms);
  if (cfg.signingCertificates) Object.freeze(cfg.signingCertificates);
  if (Array.isArray(cfg.audience)) Object.freeze(cfg.audience);
  if (cfg.attributeMapping) Object.freeze(cfg.attributeMapping);
  return Object.freeze(cfg);
}

type Fail = (field: string, problem: string) => never;

function checkUrl(value: unknown, field: string, fail: Fail, httpsOnly: boolean): string {
  if (typeof value !== 'string') return fail(field, 'must be an absolute URL string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(field, `"${value}" is not an absolute URL`);
  }
  if (httpsOnly) {
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      fail(field, 'must use https (plain http is only allowed for loopback hosts)');
    }
  } else if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    fail(field, 'must be an http(s) URL');
  }
  return value;
}

function parseOidc(obj: Record<string, unknown>, cfg: TrustedIdpConfig, fail: Fail): void {
  const hasJwks = obj.jwksUri !== undefined;
  const hasDiscovery = obj.discoveryUrl !== undefined;
  if (hasJwks === hasDiscovery) {
    fail(hasJwks ? 'discoveryUrl' : 'jwksUri', 'exactly one of jwksUri and discoveryUrl must be set');
  }
  if (hasJwks) cfg.jwksUri = checkUrl(obj.jwksUri, 'jwksUri', fail, true);
  if (hasDiscovery) cfg.discoveryUrl = checkUrl(obj.discoveryUrl, 'discoveryUrl', fail, true);

  const aud = obj.audience;
  if (typeof aud === 'string') {
    if (aud === '') fail('audience', 'must not be empty');
    cfg.audience = aud;
  } else if (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string' && a !== '')) {
    cfg.audience = [...(aud as string[])];
  } else {
    fail('audience', 'is required for OIDC: our client id (string or non-empty array of strings)');
  }

  if (obj.allowedAlgorithms === undefined) {
    cfg.allowedAlgorithms = [...DEFAULT_OIDC_ALGORITHMS];
  } else {
    const algs = obj.allowedAlgorithms;
    if (!Array.isArray(algs) || algs.length === 0) {
      fail('allowedAlgorithms', 'must be a non-empty array');
    }
    for (const a of algs as unknown[]) {
      if (typeof a !== 'string' || !SUPPORTED_OIDC_ALGORITHMS.includes(a)) {
        fail(
          'allowedAlgorithms',
          `"${String(a)}" is not allowed (asymmetric algorithms only: ${SUPPORTED_OIDC_ALGORITHMS.join(', ')})`,
        );
      }
    }
    cfg.allowedAlgorithms = [...new Set(algs as string[])];
  }
}

function parseSaml(obj: Record<string, unknown>, cfg: TrustedIdpConfig, fail: Fail): void {
  if (typeof obj.spEntityId !== 'string' || obj.spEntityId.trim() === '') {
    fail('spEntityId', 'is required for SAML (our SP entity id, the expected Audience)');
  }
  cfg.spEntityId = obj.spEntityId as string;
  cfg.acsUrl = checkUrl(obj.acsUrl, 'acsUrl', fail, false);

  const certs = obj.signingCertificates;
  if (!Array.isArray(certs) || certs.length === 0) {
    fail('signingCertificates', 'is required for SAML: a non-empty array of PEM certificates');
  }
  cfg.signingCertificates = (certs as unknown[]).map((c, i) => {
    if (typeof c !== 'string') return fail(`signingCertificates[${i}]`, 'must be a PEM string');
    const pem = normalizeCertificate(c);
    try {
      new X509Certificate(pem);
    } catch (e) {
      return fail(`signingCertificates[${i}]`, `is not a valid X.509 certificate (${(e as Error).message})`);
    }
    return pem;
  });

  for (const flag of ['wantAssertionsSigned', 'wantResponseSigned'] as const) {
    if (obj[flag] !== undefined && typeof obj[flag] !== 'boolean') fail(flag, 'must be a boolean');
  }
  cfg.wantAssertionsSigned = (obj.wantAssertionsSigned as boolean | undefined) ?? true;
  // With both false, a signature is still required: either a valid Response signature or a valid
  // Assertion signature (never none).
  cfg.wantResponseSigned = (obj.wantResponseSigned as boolean | undefined) ?? false;
}

/** PEM as is (trimmed, LF line endings); bare base64 DER (metadata style) gets PEM armour. */
export function normalizeCertificate(input: string): string {
  const trimmed = input.replace(/\r\n?/g, '\n').trim();
  if (trimmed.startsWith('-----BEGIN CERTIFICATE-----')) return trimmed + '\n';
  const b64 = trimmed.replace(/\s+/g, '');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
