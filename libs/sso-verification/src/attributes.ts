import { LoginRefused, type TrustedIdpConfig } from './types';

/** Scalar claim/attribute value as string; arrays take their first scalar value; objects are ignored. */
export function firstScalar(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const s = firstScalar(v);
      if (s !== undefined) return s;
    }
    return undefined;
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/**
 * Applies `attributeMapping` (source name -> engine attribute). `lookup` returns the raw value(s)
 * for a source name. Empty values are dropped. The result holds mapped engine attributes only.
 */
export function mapAttributes(
  idp: TrustedIdpConfig,
  lookup: (sourceName: string) => unknown,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [source, target] of Object.entries(idp.attributeMapping ?? {})) {
    const value = firstScalar(lookup(source));
    if (value !== undefined && value !== '' && out[target] === undefined) out[target] = value;
  }
  return { ...out };
}

/** Refuses with `domain_not_allowed` unless the email's domain is exactly one of the allowed domains. */
export function checkEmailDomain(idp: TrustedIdpConfig, email: string | undefined): void {
  const allowed = idp.allowedEmailDomains;
  if (!allowed || allowed.length === 0) return;
  if (email === undefined) {
    throw new LoginRefused('domain_not_allowed', `IdP ${idp.id} restricts email domains but the login carries no email`);
  }
  const at = email.indexOf('@');
  if (at <= 0 || at !== email.lastIndexOf('@') || at === email.length - 1) {
    throw new LoginRefused('domain_not_allowed', `"${email}" is not a plain address with a single "@"`);
  }
  const domain = email.slice(at + 1).toLowerCase();
  if (!allowed.includes(domain)) {
    throw new LoginRefused('domain_not_allowed', `email domain "${domain}" is not allowed for IdP ${idp.id}`);
  }
}
