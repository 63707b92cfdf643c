import { readFileSync } from 'node:fs';
import { IdpConfigError, parseIdpConfig, type TrustedIdpConfig } from '@idlc/sso-verification';
import { ConfigError } from '../config/config';

/**
 * Reads and validates the trusted IdP list named by SSO_IDPS_FILE (a JSON array, see
 * config/idps.example.json). Any problem is a {@link ConfigError} naming the file, the IdP and the
 * field, so a bad file stops start-up instead of refusing logins later.
 */
export function loadTrustedIdps(file: string): TrustedIdpConfig[] {
  const fail = (problem: string): never => {
    throw new ConfigError([`SSO_IDPS_FILE=${JSON.stringify(file)}: ${problem}`]);
  };
  let raw = '';
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    fail(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    fail(`is not valid JSON (${(e as Error).message})`);
  }
  try {
    return parseIdpConfig(json);
  } catch (e) {
    if (e instanceof IdpConfigError) return fail(e.message);
    throw e;
  }
}
