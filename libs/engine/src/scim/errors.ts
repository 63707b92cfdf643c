/** RFC 7644 section 3.12 scimType values. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** Any SCIM failure; the HTTP layer renders it with the SCIM Error schema. */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: ScimType | undefined,
    detail: string,
  ) {
    super(detail);
    this.name = 'ScimError';
  }
}

export const badRequest = (scimType: ScimType, detail: string) => new ScimError(400, scimType, detail);
export const notFound = (detail: string) => new ScimError(404, undefined, detail);

/** Names that must never become object keys from client input (prototype pollution). */
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function assertSafeName(name: string, what = 'path'): void {
  if (FORBIDDEN.has(name) || FORBIDDEN.has(name.toLowerCase())) throw badRequest(what === 'path' ? 'invalidPath' : 'invalidFilter', `'${name}' is not an attribute`);
}
