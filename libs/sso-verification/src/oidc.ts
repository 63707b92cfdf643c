import { createHash } from 'node:crypto';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
  type KeyLike,
} from 'jose';
import { checkEmailDomain, firstScalar, mapAttributes } from './attributes';
import type { RemoteKeySet } from './jwks';
import { IdpUnavailableError, LoginRefused, type Clock, type TrustedIdpConfig, type VerifiedLogin } from './types';

const MAX_TOKEN_LENGTH = 64 * 1024;

/** Unverified `iss` of a compact JWS, used only to pick the configured IdP. */
export function peekIssuer(idToken: unknown): string {
  if (typeof idToken !== 'string' || idToken.length === 0) {
    throw new LoginRefused('malformed', 'ID token must be a non-empty string');
  }
  if (idToken.length > MAX_TOKEN_LENGTH) throw new LoginRefused('malformed', 'ID token is too large');
  if (idToken.split('.').length !== 3) {
    throw new LoginRefused('malformed', 'ID token is not a compact JWS (three dot-separated parts)');
  }
  let payload: JWTPayload;
  try {
    payload = decodeJwt(idToken);
  } catch (e) {
    throw new LoginRefused('malformed', `ID token cannot be decoded: ${(e as Error).message}`);
  }
  if (typeof payload.iss !== 'string' || payload.iss === '') {
    throw new LoginRefused('malformed', 'ID token has no "iss" claim');
  }
  return payload.iss;
}

/** jose error -> refusal. Anything unexpected is re-thrown (a bug, not a refusal). */
function refusalFromJose(e: unknown): LoginRefused {
  if (e instanceof LoginRefused) return e;
  if (e instanceof errors.JWTExpired) return new LoginRefused('expired', e.message);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === 'missing' || e.reason === 'invalid') {
      return new LoginRefused('malformed', e.message);
    }
    switch (e.claim) {
      case 'aud':
        return new LoginRefused('wrong_audience', e.message);
      case 'iss':
        return new LoginRefused('unknown_issuer', e.message);
      case 'nbf':
      case 'iat':
      case 'exp':
        return new LoginRefused('expired', e.message);
      default:
        return new LoginRefused('malformed', e.message);
    }
  }
  if (
    e instanceof errors.JWSSignatureVerificationFailed ||
    e instanceof errors.JOSEAlgNotAllowed ||
    e instanceof errors.JWKSNoMatchingKey ||
    e instanceof errors.JWKSMultipleMatchingKeys ||
    e instanceof errors.JOSENotSupported ||
    e instanceof errors.JWKInvalid
  ) {
    return new LoginRefused('invalid_signature', e.message || e.code);
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) {
    return new LoginRefused('malformed', e.message);
  }
  if (e instanceof TypeError) {
    // jose throws TypeError when a key does not fit the algorithm (e.g. an RSA key for ES256).
    return new LoginRefused('invalid_signature', e.message);
  }
  throw e;
}

export interface OidcVerifyContext {
  idp: TrustedIdpConfig;
  keySet: RemoteKeySet;
  clock: Clock;
}

async function verifyWithKeys(
  idToken: string,
  keySet: RemoteKeySet,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  const attempt = async (resolver: Awaited<ReturnType<RemoteKeySet['current']>>): Promise<JWTPayload> => {
    try {
      return (await jwtVerify(idToken, resolver, options)).payload;
    } catch (e) {
      if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
      // Several keys match (no kid): try each candidate.
      const candidates = e as unknown as AsyncIterable<KeyLike>;
      for await (const key of candidates) {
        try {
          return (await jwtVerify(idToken, key, options)).payload;
        } catch (inner) {
          if (inner instanceof errors.JWSSignatureVerificationFailed) continue;
          throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  };

  const resolver = await keySet.current();
  try {
    return await attempt(resolver);
  } catch (e) {
    if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
    // Unknown kid: the IdP may have rotated keys. Refetch once (rate-limited), then retry.
    const fresh = await keySet.refetchForUnknownKey();
    if (!fresh) throw e;
    return attempt(fresh);
  }
}

export async function verifyOidcToken(ctx: OidcVerifyContext, idToken: string): Promise<VerifiedLogin> {
  const { idp, keySet, clock } = ctx;
  const skew = idp.clockSkewSeconds ?? 60;
  const allowedAlgorithms = idp.allowedAlgorithms ?? [];

  // Algorithm allowlist before any key lookup: "none", HS* and anything unlisted never reach a key.
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(idToken).alg;
  } catch (e) {
    throw new LoginRefused('malformed', `ID token header cannot be decoded: ${(e as Error).message}`);
  }
  if (typeof alg !== 'string' || !allowedAlgorithms.includes(alg)) {
    throw new LoginRefused('invalid_signature', `algorithm "${String(alg)}" is not allowed for IdP ${idp.id}`);
  }

  const now = clock.now();
  let payload: JWTPayload;
  try {
    payload = await verifyWithKeys(idToken, keySet, {
      algorithms: allowedAlgorithms,
      issuer: idp.issuer,
      audience: idp.audience as string | string[],
      currentDate: now,
      clockTolerance: skew,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    });
  } catch (e) {
    if (e instanceof IdpUnavailableError) throw e;
    throw refusalFromJose(e);
  }

  const nowSeconds = Math.floor(now.getTime() / 1000);
  const iat = payload.iat as number;
  if (iat > nowSeconds + skew) {
    throw new LoginRefused('expired', `"iat" is in the future (${iat} > ${nowSeconds} + ${skew}s skew)`);
  }
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new LoginRefused('malformed', '"sub" must be a non-empty string');
  }
  // An ID token issued to another client but also naming us: azp, when present, must be us.
  const audiences = Array.isArray(idp.audience) ? idp.audience : [idp.audience as string];
  if (payload.azp !== undefined && (typeof payload.azp !== 'string' || !audiences.includes(payload.azp))) {
    throw new LoginRefused('wrong_audience', `"azp" ${JSON.stringify(payload.azp)} is not one of our client ids`);
  }

  const claims = payload as Record<string, unknown>;
  // The standard email claim is not used when the IdP says it is unverified.
  const emailUsable = (name: string) => name !== 'email' || claims.email_verified !== false;
  const attributes = mapAttributes(idp, (name) => (emailUsable(name) ? claims[name] : undefined));
  let email: string | undefined = attributes.email;
  if (email === undefined && emailUsable('email')) email = firstScalar(claims.email);
  if (email === '') email = undefined;
  checkEmailDomain(idp, email);

  const jti = typeof payload.jti === 'string' && payload.jti !== '' ? payload.jti : undefined;
  const credentialId = jti ?? `sha256:${createHash('sha256').update(idToken).digest('base64url')}`;
  const exp = payload.exp as number;

  return {
    idpId: idp.id,
    kind: 'oidc',
    issuer: idp.issuer,
    subject: payload.sub,
    credentialId,
    expiresAt: new Date((exp + skew) * 1000),
    issuedAt: new Date(iat * 1000),
    ...(email !== undefined ? { email } : {}),
    attributes,
    rawClaims: { ...claims },
  };
}
