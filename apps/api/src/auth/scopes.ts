import { SetMetadata } from '@nestjs/common';
import type { Scope } from '@idlc/engine';

export const SCOPE_KEY = 'idlc:scope';
export const PUBLIC_KEY = 'idlc:public';

/** The scope a route (or every route of a controller) requires. */
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);

/** Health probes and the UI's static files: reachable without a credential. */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

/** Who made the request, set by the auth guard; recorded in event metadata. */
export interface Principal {
  /** `credential:<id>` for API credentials, `scim-token-<n>` for a configured SCIM_TOKENS entry. */
  actor: string;
  credentialId?: string;
  name: string;
  scopes: readonly Scope[];
}

export type AuthenticatedRequest = { principal?: Principal };

/** Metadata fields naming the caller, for every event a request appends. */
export const principalMetadata = (p: Principal | undefined) =>
  p ? { actor: p.actor, ...(p.credentialId ? { credentialId: p.credentialId, credentialName: p.name } : {}) } : {};
