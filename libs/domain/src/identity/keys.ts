/**
 * Durable external keys. An identity is found by these, never by email: an HR employee id, an IdP
 * issuer with its subject (OIDC sub or SAML persistent NameID), a SCIM externalId or userName.
 */
export type ExternalKey =
  | { kind: 'hr'; value: string }
  | { kind: 'idp'; issuer: string; value: string }
  | { kind: 'scim-external'; value: string }
  | { kind: 'scim-username'; value: string };

export function keyString(k: ExternalKey): string {
  switch (k.kind) {
    case 'hr':
      return `hr:${k.value}`;
    case 'idp':
      return `idp:${k.issuer}|${k.value}`;
    case 'scim-external':
      return `scim-external:${k.value}`;
    case 'scim-username':
      // SCIM userName is case-insensitive (RFC 7643 section 4.1.1).
      return `scim-username:${k.value.toLowerCase()}`;
  }
}

/** The key a keyString() came from (a SCIM userName comes back lower-cased, which names the same key). */
export function parseKeyString(s: string): ExternalKey | null {
  const i = s.indexOf(':');
  if (i < 0) return null;
  const kind = s.slice(0, i);
  const rest = s.slice(i + 1);
  switch (kind) {
    case 'hr':
      return { kind: 'hr', value: rest };
    case 'idp': {
      // Split at the first '|': subjects may hold one (auth0|123); keyString() of the result is s either way.
      const bar = rest.indexOf('|');
      return bar < 0 ? null : { kind: 'idp', issuer: rest.slice(0, bar), value: rest.slice(bar + 1) };
    }
    case 'scim-external':
      return { kind: 'scim-external', value: rest };
    case 'scim-username':
      return { kind: 'scim-username', value: rest };
    default:
      return null;
  }
}

export const hrKey = (employeeId: string): ExternalKey => ({ kind: 'hr', value: employeeId });
export const idpKey = (issuer: string, subject: string): ExternalKey => ({ kind: 'idp', issuer, value: subject });

export const IDENTITY_STREAM_PREFIX = 'identity-';
export const identityStream = (identityId: string): string => `${IDENTITY_STREAM_PREFIX}${identityId}`;
export const identityIdOf = (streamId: string): string => streamId.slice(IDENTITY_STREAM_PREFIX.length);
