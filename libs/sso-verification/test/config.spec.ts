import {
  CredentialVerifier,
  IdpConfigError,
  InMemoryReplayCache,
  parseIdpConfig,
  type TrustedIdpConfig,
} from '@idlc/sso-verification';
import { ManualClock, TestSamlIdp } from '../../../test/support/test-idp';

const oidc = (o: Record<string, unknown> = {}) => ({
  id: 'okta',
  kind: 'oidc',
  issuer: 'https://corp.okta.com',
  jwksUri: 'https://corp.okta.com/oauth2/v1/keys',
  audience: 'client-1',
  ...o,
});

function configError(json: unknown): IdpConfigError {
  try {
    parseIdpConfig(json);
  } catch (e) {
    if (e instanceof IdpConfigError) return e;
    throw e;
  }
  throw new Error('expected parseIdpConfig to throw');
}

describe('parseIdpConfig', () => {
  let saml: TestSamlIdp;
  beforeAll(async () => {
    saml = await TestSamlIdp.create();
  });

  it('accepts OIDC and SAML entries and fills in defaults', () => {
    const [o, s] = parseIdpConfig([
      oidc({ allowedEmailDomains: ['Example.COM'], attributeMapping: { email: 'email' }, jit: true, defaultRole: 'employee' }),
      saml.config(),
    ]);
    expect(o).toEqual({
      id: 'okta',
      kind: 'oidc',
      issuer: 'https://corp.okta.com',
      jwksUri: 'https://corp.okta.com/oauth2/v1/keys',
      audience: 'client-1',
      allowedAlgorithms: ['RS256', 'ES256', 'PS256', 'EdDSA'],
      clockSkewSeconds: 60,
      allowedEmailDomains: ['example.com'],
      attributeMapping: { email: 'email' },
      jit: true,
      defaultRole: 'employee',
    });
    expect(s).toMatchObject({
      kind: 'saml',
      wantAssertionsSigned: true,
      wantResponseSigned: false,
      clockSkewSeconds: 60,
    });
    expect(s?.signingCertificates?.map((c) => c.trim())).toEqual([saml.certificatePem.replace(/\r\n/g, '\n').trim()]);
  });

  it('accepts a bare base64 DER certificate (metadata style)', () => {
    const bare = saml.certificatePem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const [s] = parseIdpConfig([saml.config({ signingCertificates: [bare] })]);
    expect(s?.signingCertificates?.[0]?.replace(/\s+/g, '')).toBe(saml.certificatePem.replace(/\s+/g, ''));
  });

  it.each([
    [[oidc({ allowedAlgorithms: ['RS256', 'none'] })], 'allowedAlgorithms'],
    [[oidc({ allowedAlgorithms: ['HS256'] })], 'allowedAlgorithms'],
    [[oidc({ audience: undefined })], 'audience'],
    [[oidc({ audience: [] })], 'audience'],
    [[oidc({ jwksUri: undefined })], 'jwksUri'],
    [[oidc({ discoveryUrl: 'https://corp.okta.com/.well-known/openid-configuration' })], 'discoveryUrl'],
    [[oidc({ jwksUri: 'http://corp.okta.com/keys' })], 'jwksUri'],
    [[oidc({ audiance: 'typo' })], 'audiance'],
    [[oidc({ acsUrl: 'https://x' })], 'acsUrl'],
    [[oidc({ clockSkewSeconds: -1 })], 'clockSkewSeconds'],
    [[oidc({ allowedEmailDomains: ['@example.com'] })], 'allowedEmailDomains[0]'],
    [[oidc({ kind: 'ldap' })], 'kind'],
    [[oidc(), oidc({ id: 'okta' })], 'id'],
    [[oidc(), oidc({ id: 'okta-2' })], 'issuer'],
  ])('rejects %j naming field %s and the IdP', (json, field) => {
    const e = configError(json);
    expect(e.field).toBe(field);
    expect(e.message).toContain(`field "${field}"`);
    expect(e.idp).toMatch(/okta/);
  });

  it('rejects SAML entries without certificates, with a bad certificate, or without ACS URL', () => {
    expect(configError([saml.config({ signingCertificates: [] })]).field).toBe('signingCertificates');
    expect(configError([saml.config({ signingCertificates: ['not a cert'] })]).field).toBe('signingCertificates[0]');
    const noAcs = { ...saml.config() } as Record<string, unknown>;
    delete noAcs.acsUrl;
    expect(configError([noAcs]).field).toBe('acsUrl');
    expect(configError([saml.config({ jwksUri: 'https://x' })]).message).toContain('not valid for a saml IdP');
  });

  it('rejects a non-array and a nameless entry', () => {
    expect(configError({}).field).toBe('(root)');
    expect(configError([{ kind: 'oidc' }]).field).toBe('id');
  });

  it('is applied by the CredentialVerifier constructor', () => {
    expect(() => new CredentialVerifier([oidc({ allowedAlgorithms: ['none'] }) as TrustedIdpConfig], { clock: new ManualClock() })).toThrow(
      IdpConfigError,
    );
  });
});

describe('InMemoryReplayCache', () => {
  it('claims once per (issuer, credentialId) until expiry', async () => {
    const clock = new ManualClock();
    const cache = new InMemoryReplayCache(clock);
    const exp = new Date(clock.now().getTime() + 60_000);
    expect(await cache.claim('iss-a', 'id-1', exp)).toBe(true);
    expect(await cache.claim('iss-a', 'id-1', exp)).toBe(false);
    expect(await cache.claim('iss-b', 'id-1', exp)).toBe(true); // other issuer
    clock.advanceSeconds(61);
    expect(await cache.claim('iss-a', 'id-1', new Date(clock.now().getTime() + 60_000))).toBe(true);
  });

  it('fails closed when full of unexpired entries', async () => {
    const clock = new ManualClock();
    const cache = new InMemoryReplayCache(clock, 2);
    const exp = new Date(clock.now().getTime() + 60_000);
    await cache.claim('i', 'a', exp);
    await cache.claim('i', 'b', exp);
    await expect(cache.claim('i', 'c', exp)).rejects.toThrow(/full/);
    clock.advanceSeconds(61);
    expect(await cache.claim('i', 'c', new Date(clock.now().getTime() + 60_000))).toBe(true);
    expect(cache.size).toBe(1);
  });
});
