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

export const hrKey = (employeeId: string): ExternalKey => ({ kind: 'hr', value: employeeId });
export const idpKey = (issuer: string, subject: string): ExternalKey => ({ kind: 'idp', issuer, value: subject });

export const IDENTITY_STREAM_PREFIX = 'identity-';
export const identityStream = (identityId: string): string => `${IDENTITY_STREAM_PREFIX}${identityId}`;
export const identityIdOf = (streamId: string): string => streamId.slice(IDENTITY_STREAM_PREFIX.length);
