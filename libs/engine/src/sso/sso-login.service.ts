import {
  Attributes,
  decideAll,
  heldRoles,
  hrKey,
  IdentityCommand,
  IdentityState,
  idpKey,
  isAttributeName,
  keyString,
  RejectionCode,
} from '@idlc/domain';
import { newId, type EventMetadata } from '@idlc/event-store';
import {
  CredentialVerifier,
  IdpUnavailableError,
  LoginRefused,
  type RefusalType,
  type TrustedIdpConfig,
  type VerifiedLogin,
} from '@idlc/sso-verification';
import { Lru } from '../common/lru';
import type { FieldError } from '../common/validation';
import type { Engine } from '../engine';
import { CommandOutcome, DuplicateKeyError } from '../identity/identity-commands';
import { loadTrustedIdps } from './idps-file';
import { SqlReplayCache } from './sql-replay-cache';

/** What an IdP login hook posts: exactly one credential. */
export type SsoCredential = { idToken: string } | { samlResponse: string; relayState?: string };

export const SSO_LIMITS = {
  /** The verifier's own ceiling for a compact JWS. */
  idToken: 64 * 1024,
  /** Base64 of a signed SAML Response; the verifier's ceiling. */
  samlResponse: 2 * 1024 * 1024,
  /** SAML bindings say 80 bytes; real SPs send more, so allow some room but not a payload. */
  relayState: 1024,
} as const;

/** Validates the request body shape (not the credential): every bad field, or the credential. */
export function parseSsoLoginBody(body: unknown): { ok: true; credential: SsoCredential } | { ok: false; errors: FieldError[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, errors: [{ field: 'body', message: 'must be a JSON object with idToken or samlResponse' }] };
  }
  const b = body as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const k of Object.keys(b)) {
    if (k !== 'idToken' && k !== 'samlResponse' && k !== 'relayState') errors.push({ field: k, message: 'is not a known field' });
  }
  const str = (field: keyof typeof SSO_LIMITS) => {
    const v = b[field];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0) errors.push({ field, message: 'must be a non-empty string' });
    else if (v.length > SSO_LIMITS[field]) errors.push({ field, message: `must be at most ${SSO_LIMITS[field]} characters` });
  };
  str('idToken');
  str('samlResponse');
  str('relayState');
  const hasOidc = b.idToken !== undefined;
  const hasSaml = b.samlResponse !== undefined;
  if (hasOidc === hasSaml) errors.push({ field: hasOidc ? 'samlResponse' : 'idToken', message: 'exactly one of idToken and samlResponse is required' });
  if (b.relayState !== undefined && !hasSaml) errors.push({ field: 'relayState', message: 'is only valid with samlResponse' });
  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    credential: hasOidc ? { idToken: b.idToken as string } : { samlResponse: b.samlResponse as string, relayState: b.relayState as string | undefined },
  };
}

export type SsoRefusalType = RefusalType | 'jit_disabled' | 'account_disabled';

/** A refusal's published name: the library's `malformed` is `invalid_credential` (the request, not the person, is wrong). */
export const refusalSlug = (t: SsoRefusalType): string => (t === 'malformed' ? 'invalid_credential' : t);

/** A login the engine will not let through, with a stable type (the credential itself was fine or not). */
export class SsoLoginRefused extends Error {
  constructor(
    readonly type: SsoRefusalType,
    readonly detail: string,
    /** For account_disabled: the domain's reason (terminated, account_disabled, account_deleted, not_yet_active). */
    readonly reason?: RejectionCode,
  ) {
    super(`login refused (${type}): ${detail}`);
    this.name = 'SsoLoginRefused';
  }
}

export interface SsoLoginResult {
  identityId: string;
  status: IdentityState['account'];
  roles: string[];
  /** True when this login created the account (just in time). */
  provisioned: boolean;
}

export interface SsoLoginServiceOptions {
  /** Trusted IdPs; default: read from `config.ssoIdpsFile` (none when unset). */
  idps?: TrustedIdpConfig[];
  /** For JWKS and discovery documents. Default: global fetch. */
  fetch?: typeof fetch;
}

/** Refusals of the domain that mean "this account cannot log in now". */
const ACCOUNT_REFUSALS = new Set<RejectionCode>(['terminated', 'account_disabled', 'account_deleted', 'not_yet_active']);

/**
 * The SSO login hook: verifies a credential, then records the login on the identity keyed by
 * issuer + subject, linking or provisioning it just in time on a first login. Every write is one
 * `commands.execute` call (one atomic append).
 *
 * Hot path (known user): verification with cached IdP keys, one replay-cache insert, a key lookup
 * answered from memory, the aggregate from the repository's cache, one append.
 */
export class SsoLoginService {
  /**
   * External key -> identity id. Keys only move between identities by an unlink, so an entry is
   * checked against the (cached) aggregate's keys before use and dropped when they disagree.
   */
  private readonly keyOwners: Lru<string, string>;
  private readonly matchAttribute: string;

  private constructor(
    private readonly engine: Engine,
    readonly verifier: CredentialVerifier,
    readonly replayCache: SqlReplayCache,
  ) {
    this.keyOwners = new Lru(Math.max(1000, Math.min(engine.config.aggregateCacheSize, 100_000)));
    this.matchAttribute = engine.config.ssoMatchAttribute ?? 'employeeId';
  }

  /** Reads the IdP file (a bad one throws ConfigError) and prepares the replay-cache table. */
  static async open(engine: Engine, options: SsoLoginServiceOptions = {}): Promise<SsoLoginService> {
    const idps = options.idps ?? (engine.config.ssoIdpsFile ? loadTrustedIdps(engine.config.ssoIdpsFile) : []);
    const replayCache = await SqlReplayCache.open(engine.readDb, engine.clock);
    const verifier = new CredentialVerifier(idps, { clock: engine.clock, replayCache, fetch: options.fetch });
    return new SsoLoginService(engine, verifier, replayCache);
  }

  /**
   * Throws {@link SsoLoginRefused} for a refused login (after recording it when the identity is
   * known), `IdpUnavailableError` when the IdP's keys cannot be fetched.
   */
  /** `caller` names the API credential that called the hook; it is recorded beside the IdP. */
  async login(credential: SsoCredential, correlationId: string, caller: Record<string, unknown> = {}): Promise<SsoLoginResult> {
    let idpId = 'unknown';
    try {
      const login = await this.verify(credential);
      idpId = login.idpId;
      const { result, outcome } = await this.loginVerified(login, correlationId, caller);
      this.engine.ssoLogins.add(idpId, outcome);
      return result;
    } catch (e) {
      if (e instanceof LoginRefused) this.engine.ssoLogins.add(e.idpId ?? idpId, refusalSlug(e.type));
      else if (e instanceof SsoLoginRefused) this.engine.ssoLogins.add(idpId, refusalSlug(e.type));
      else if (e instanceof IdpUnavailableError) this.engine.ssoLogins.add(e.idpId, 'idp_unavailable');
      throw e;
    }
  }

  private async loginVerified(login: VerifiedLogin, correlationId: string, caller: Record<string, unknown>): Promise<{ result: SsoLoginResult; outcome: string }> {
    const idp = this.verifier.getIdp(login.idpId) as TrustedIdpConfig;
    const key = idpKey(login.issuer, login.subject);
    const ks = keyString(key);
    const attributes = engineAttributes(login.attributes);
    const metadata: EventMetadata = { source: 'sso', actor: `idp:${idp.id}`, correlationId, ...caller };
    const recordLogin: IdentityCommand & { kind: 'RecordLogin' } = {
      kind: 'RecordLogin',
      issuer: login.issuer,
      subject: login.subject,
      protocol: login.kind,
      credentialId: login.credentialId,
      attributes: Object.keys(attributes).length ? attributes : undefined,
    };

    // The key's owner (remembered, else one indexed read) records the login as the key's holder: one
    // decision on its current state, which refuses if another process has unlinked the key since.
    const remembered = this.keyOwners.get(ks);
    if (remembered) {
      const known = await this.loginAsHolder(remembered, ks, recordLogin, metadata);
      if (known) return known;
    }
    const owner = await this.engine.commands.findByKey(ks);
    if (owner && owner !== remembered) {
      const known = await this.loginAsHolder(owner, ks, recordLogin, metadata);
      if (known) return known;
    }

    if (!idp.jit) throw new SsoLoginRefused('jit_disabled', `just-in-time provisioning is off for IdP ${idp.id} and ${login.subject} has no account`);

    try {
      const hrIdentity = await this.hrMatch(login);
      if (hrIdentity) return { result: this.result(await this.link(hrIdentity, ks, recordLogin, metadata), false), outcome: 'linked' };

      const identityId = newId();
      const provision: IdentityCommand = {
        kind: 'ProvisionAccount',
        source: 'sso',
        attributes,
        keys: [key],
        initialRoles: idp.defaultRole ? [{ role: idp.defaultRole, by: `jit:${idp.id}` }] : undefined,
      };
      // The attributes came with the account: the login itself has nothing to change.
      const out = await this.engine.commands.execute(identityId, [provision, { ...recordLogin, attributes: undefined }], { metadata });
      this.keyOwners.set(ks, identityId);
      return { result: this.result(out, true), outcome: 'provisioned' };
    } catch (e) {
      // A concurrent first login of the same user claimed the key first: this is now a known user.
      if (e instanceof DuplicateKeyError && e.key === ks) {
        this.keyOwners.set(ks, e.ownerIdentityId);
        return this.known(await this.engine.commands.execute(e.ownerIdentityId, [recordLogin], { metadata }));
      }
      throw e;
    }
  }

  private verify(c: SsoCredential): Promise<VerifiedLogin> {
    return 'idToken' in c ? this.verifier.verifyOidc(c.idToken) : this.verifier.verifySaml(c.samlResponse, c.relayState);
  }

  /** The login recorded on `identityId` as the holder of key `ks`; null when it does not hold it (any more). */
  private async loginAsHolder(
    identityId: string,
    ks: string,
    recordLogin: IdentityCommand & { kind: 'RecordLogin' },
    metadata: EventMetadata,
  ): Promise<{ result: SsoLoginResult; outcome: string } | null> {
    const out = await this.engine.commands.execute(identityId, [{ ...recordLogin, asKeyHolder: true }], { metadata });
    if (out.rejection?.code === 'key_not_held') {
      this.keyOwners.delete(ks);
      return null;
    }
    this.keyOwners.set(ks, identityId);
    return this.known(out);
  }

  /** An HR-created identity whose employee id the IdP asserted in the configured attribute. */
  private async hrMatch(login: VerifiedLogin): Promise<string | null> {
    const value = login.attributes[this.matchAttribute]?.trim();
    if (!value) return null;
    return this.engine.commands.findByKey(keyString(hrKey(value)));
  }

  /**
   * Links the IdP key to an HR-created identity and records the login, in one append. When the
   * account cannot log in (terminated, disabled, not started yet), only the refused attempt is
   * recorded: a refused login must not leave a new key behind.
   */
  private async link(identityId: string, ks: string, recordLogin: IdentityCommand & { kind: 'RecordLogin' }, metadata: EventMetadata): Promise<CommandOutcome> {
    const linkAndLogin: IdentityCommand[] = [{ kind: 'LinkKey', key: idpKey(recordLogin.issuer, recordLogin.subject) }, recordLogin];
    const state = await this.engine.repository.loadCurrent(identityId);
    // A dry run of the pure decision (no write) tells whether the login would be refused.
    const trial = decideAll(state, linkAndLogin, {
      now: this.engine.clock.now(),
      birthright: this.engine.policies.birthright(),
      lifecycle: this.engine.policies.lifecycle(),
    });
    const commands = trial.rejection ? [recordLogin] : linkAndLogin;
    const out = await this.engine.commands.execute(identityId, commands, { metadata });
    if (!out.rejection) this.keyOwners.set(ks, identityId);
    return out;
  }

  /** A known user's login: recorded, or answered within the record interval with nothing appended. */
  private known(out: CommandOutcome): { result: SsoLoginResult; outcome: string } {
    const result = this.result(out, false);
    return { result, outcome: out.events.some((e) => e.type === 'LoginRecorded') ? 'recorded' : 'within_interval' };
  }

  private result(out: CommandOutcome, provisioned: boolean): SsoLoginResult {
    if (out.rejection) {
      if (ACCOUNT_REFUSALS.has(out.rejection.code)) throw new SsoLoginRefused('account_disabled', out.rejection.message, out.rejection.code);
      throw new Error(`SSO login on identity ${out.identityId} rejected unexpectedly: ${out.rejection.code} (${out.rejection.message})`);
    }
    return { identityId: out.identityId, status: out.state.account, roles: heldRoles(out.state), provisioned };
  }
}

/** Only engine attributes go into the identity; e.g. employeeId is a key (hr:...), not an attribute. */
function engineAttributes(mapped: Record<string, string>): Attributes {
  const out: Attributes = {};
  // An empty claim is "not sent", not "clear it": IdPs omit and blank values interchangeably.
  for (const [name, value] of Object.entries(mapped)) if (isAttributeName(name) && value.trim() !== '') out[name] = value;
  return out;
}
