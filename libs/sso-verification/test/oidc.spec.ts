import {
  CredentialVerifier,
  IdpUnavailableError,
  LoginRefused,
  type RefusalType,
  type TrustedIdpConfig,
} from '@idlc/sso-verification';
import { ManualClock, TestOidcIdp } from '../../../test/support/test-idp';

async function refusal(p: Promise<unknown>): Promise<LoginRefused> {
  try {
    await p;
  } catch (e) {
    if (e instanceof LoginRefused) return e;
    throw e;
  }
  throw new Error('expected the credential to be refused, but it was accepted');
}

async function expectRefused(p: Promise<unknown>, type: RefusalType): Promise<LoginRefused> {
  const r = await refusal(p);
  expect({ type: r.type, detail: r.detail }).toEqual({ type, detail: expect.any(String) });
  return r;
}

const mapping = {
  email: 'email',
  given_name: 'givenName',
  family_name: 'familyName',
  name: 'displayName',
  dept: 'department',
  employee_number: 'employeeId',
};

describe('CredentialVerifier.verifyOidc', () => {
  let idp: TestOidcIdp;
  let other: TestOidcIdp; // a real IdP we do not trust
  let clock: ManualClock;

  beforeAll(async () => {
    idp = await TestOidcIdp.start({ clientId: 'idlc-client' });
    await idp.addKey('ES256');
    await idp.addKey('RS256'); // the most recent RS256 key signs RS256 tokens by default
    other = await TestOidcIdp.start({ clientId: 'idlc-client' });
  });
  afterAll(async () => {
    await idp.stop();
    await other.stop();
  });
  beforeEach(() => {
    clock = new ManualClock();
    idp.jwksFailureStatus = undefined;
  });

  function verifier(overrides: Partial<TrustedIdpConfig> = {}, extra: TrustedIdpConfig[] = []) {
    return new CredentialVerifier([idp.config({ id: 'corp', attributeMapping: mapping, ...overrides }), ...extra], {
      clock,
    });
  }

  const now = () => clock.now();

  it('accepts a valid RS256 ID token and maps the attributes', async () => {
    const v = verifier();
    const token = await idp.signIdToken({
      alg: 'RS256',
      now: now(),
      claims: { jti: 'jti-rs256', dept: ['Engineering', 'Research'], employee_number: 4711 },
    });
    const login = await v.verifyOidc(token);
    expect(login).toEqual({
      idpId: 'corp',
      kind: 'oidc',
      issuer: idp.issuer,
      subject: 'user-123',
      credentialId: 'jti-rs256',
      expiresAt: new Date(now().getTime() + (300 + 60) * 1000),
      issuedAt: now(),
      email: 'alice@example.com',
      attributes: {
        email: 'alice@example.com',
        givenName: 'Alice',
        familyName: 'Example',
        displayName: 'Alice Example',
        department: 'Engineering',
        employeeId: '4711',
      },
      rawClaims: expect.objectContaining({ iss: idp.issuer, sub: 'user-123', aud: 'idlc-client' }),
    });
  });

  it('accepts a valid ES256 ID token', async () => {
    const token = await idp.signIdToken({ alg: 'ES256', now: now(), claims: { sub: 'es-user' } });
    const login = await verifier().verifyOidc(token);
    expect(login.subject).toBe('es-user');
    expect(login.attributes.givenName).toBe('Alice');
  });

  it('uses the discovery document to find the JWKS', async () => {
    const v = new CredentialVerifier(
      [idp.config({ id: 'disco', discoveryUrl: idp.discoveryUrl })],
      { clock },
    );
    const before = idp.discoveryRequests;
    const login = await v.verifyOidc(await idp.signIdToken({ now: now(), claims: { sub: 'disco-user' } }));
    expect(login.subject).toBe('disco-user');
    expect(idp.discoveryRequests).toBe(before + 1);
  });

  it('fetches keys through the injected fetch, once for concurrent logins', async () => {
    const urls: string[] = [];
    const countingFetch: typeof fetch = (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    const v = new CredentialVerifier([idp.config({ id: 'corp' })], { clock, fetch: countingFetch });
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_, i) => idp.signIdToken({ now: now(), claims: { sub: `u${i}` } })),
    );
    const logins = await Promise.all(tokens.map((t) => v.verifyOidc(t)));
    expect(logins.map((l) => l.subject)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']);
    expect(urls).toEqual([idp.jwksUri]);
  });

  it('accepts aud as an array that contains our client id (azp = us)', async () => {
    const token = await idp.signIdToken({
      now: now(),
      claims: { aud: ['https://api.example.com', 'idlc-client'], azp: 'idlc-client', sub: 'arr-user' },
    });
    expect((await verifier().verifyOidc(token)).subject).toBe('arr-user');
  });

  it('accepts a configured audience list', async () => {
    const token = await idp.signIdToken({ now: now(), claims: { aud: 'second-client' } });
    const login = await verifier({ audience: ['idlc-client', 'second-client'] }).verifyOidc(token);
    expect(login.subject).toBe('user-123');
  });

  it('refetches the JWKS once when a token names a new kid (key rotation)', async () => {
    const v = verifier();
    await v.verifyOidc(await idp.signIdToken({ now: now() }));
    const fetchesBefore = idp.jwksRequests;
    expect(v.jwksFetchCount('corp')).toBe(1);

    const newKid = await idp.addKey('RS256'); // the IdP rotates: new key, new kid
    clock.advanceSeconds(45); // past the 30 s refetch cooldown
    const login = await v.verifyOidc(await idp.signIdToken({ kid: newKid, now: now(), claims: { sub: 'rotated' } }));
    expect(login.subject).toBe('rotated');
    expect(idp.jwksRequests).toBe(fetchesBefore + 1);
    expect(v.jwksFetchCount('corp')).toBe(2);

    // the new key is cached now: no further fetch
    await v.verifyOidc(await idp.signIdToken({ kid: newKid, now: now() }));
    expect(idp.jwksRequests).toBe(fetchesBefore + 1);
  });

  it('rate-limits refetches for unknown kids and refuses keys the IdP never published', async () => {
    const v = verifier();
    await v.verifyOidc(await idp.signIdToken({ now: now() }));
    const fetchesBefore = idp.jwksRequests;
    const rogueKid = await idp.addKey('RS256', { publish: false });

    // within the cooldown: no refetch at all
    for (let i = 0; i < 5; i++) {
      await expectRefused(v.verifyOidc(await idp.signIdToken({ kid: rogueKid, now: now() })), 'invalid_signature');
    }
    expect(idp.jwksRequests).toBe(fetchesBefore);

    // after the cooldown: exactly one refetch, still unknown -> invalid_signature
    clock.advanceSeconds(31);
    await expectRefused(v.verifyOidc(await idp.signIdToken({ kid: rogueKid, now: now() })), 'invalid_signature');
    await expectRefused(v.verifyOidc(await idp.signIdToken({ kid: rogueKid, now: now() })), 'invalid_signature');
    expect(idp.jwksRequests).toBe(fetchesBefore + 1);
  });

  it('refuses a token signed by an unpublished key that claims a published kid', async () => {
    const rogueKid = await idp.addKey('RS256', { publish: false });
    const publishedKid = idp.keys.find((k) => k.alg === 'RS256' && k.published)!.kid;
    const token = await idp.signIdToken({ kid: rogueKid, header: { kid: publishedKid }, now: now() });
    await expectRefused(verifier().verifyOidc(token), 'invalid_signature');
  });

  it('refuses alg none', async () => {
    const token = idp.unsignedIdToken({ now: now() });
    expect(token.split('.')[2]).toBe('');
    await expectRefused(verifier().verifyOidc(token), 'invalid_signature');
  });

  it('refuses HS256 signed with the RSA public key as the secret', async () => {
    const token = await idp.hs256WithPublicKey({ now: now() });
    const r = await expectRefused(verifier().verifyOidc(token), 'invalid_signature');
    expect(r.detail).toContain('HS256');
  });

  it('refuses an algorithm outside the configured allowlist', async () => {
    const token = await idp.signIdToken({ alg: 'ES256', now: now() });
    await expectRefused(verifier({ allowedAlgorithms: ['RS256'] }).verifyOidc(token), 'invalid_signature');
  });

  it('refuses a token whose payload was changed after signing', async () => {
    const token = await idp.signIdToken({ now: now() });
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.sub = 'admin';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    await expectRefused(verifier().verifyOidc(forged), 'invalid_signature');
  });

  it('refuses an expired token, accepts one expired within the clock skew', async () => {
    const issued = new Date(now().getTime() - 400_000); // exp = issued + 300 s = now - 100 s
    await expectRefused(verifier().verifyOidc(await idp.signIdToken({ now: issued })), 'expired');

    const recent = new Date(now().getTime() - 330_000); // exp = now - 30 s, skew 60 s
    expect((await verifier().verifyOidc(await idp.signIdToken({ now: recent }))).subject).toBe('user-123');
    await expectRefused(verifier({ clockSkewSeconds: 10 }).verifyOidc(await idp.signIdToken({ now: recent })), 'expired');
  });

  it('refuses a token whose nbf is in the future', async () => {
    const nbf = Math.floor(now().getTime() / 1000) + 120;
    const token = await idp.signIdToken({ now: now(), claims: { nbf } });
    await expectRefused(verifier().verifyOidc(token), 'expired');
    clock.advanceSeconds(70); // nbf - skew has passed
    expect((await verifier().verifyOidc(token)).subject).toBe('user-123');
  });

  it('refuses a token issued in the future', async () => {
    const token = await idp.signIdToken({ now: new Date(now().getTime() + 600_000) });
    await expectRefused(verifier().verifyOidc(token), 'expired');
  });

  it('refuses a wrong audience', async () => {
    const token = await idp.signIdToken({ now: now(), claims: { aud: 'someone-else' } });
    await expectRefused(verifier().verifyOidc(token), 'wrong_audience');
  });

  it('refuses a token from a trusted issuer issued to another client', async () => {
    const forOther = await idp.signIdToken({ now: now(), claims: { aud: 'other-client', azp: 'other-client' } });
    await expectRefused(verifier().verifyOidc(forOther), 'wrong_audience');
    // names us among its audiences but was obtained by (authorized for) another client
    const azpOther = await idp.signIdToken({
      now: now(),
      claims: { aud: ['other-client', 'idlc-client'], azp: 'other-client' },
    });
    await expectRefused(verifier().verifyOidc(azpOther), 'wrong_audience');
  });

  it('refuses an unknown issuer, even when it is a real IdP with a valid signature', async () => {
    const token = await other.signIdToken({ now: now() });
    await expectRefused(verifier().verifyOidc(token), 'unknown_issuer');
    expect(other.jwksRequests).toBe(0); // never fetched keys of an untrusted issuer
  });

  it('refuses a token claiming a trusted iss but signed by another IdP', async () => {
    const token = await other.signIdToken({ now: now(), claims: { iss: idp.issuer } });
    await expectRefused(verifier().verifyOidc(token), 'invalid_signature');
  });

  it('refuses a replayed jti', async () => {
    const v = verifier();
    const token = await idp.signIdToken({ now: now(), claims: { jti: 'once-only' } });
    expect((await v.verifyOidc(token)).credentialId).toBe('once-only');
    await expectRefused(v.verifyOidc(token), 'replayed');
    // a different token with the same jti from the same issuer is also a replay
    await expectRefused(v.verifyOidc(await idp.signIdToken({ now: now(), claims: { jti: 'once-only', sub: 'x' } })), 'replayed');
  });

  it('refuses a replayed token without jti (keyed by the token hash)', async () => {
    const v = verifier();
    const token = await idp.signIdToken({ now: now(), claims: { jti: undefined } });
    const login = await v.verifyOidc(token);
    expect(login.credentialId).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
    await expectRefused(v.verifyOidc(token), 'replayed');
  });

  it('refuses an email domain that is not allowed (exact domain, no suffix tricks)', async () => {
    const v = verifier({ allowedEmailDomains: ['example.com'] });
    const sign = (email: string) => idp.signIdToken({ now: now(), claims: { email } });
    await expectRefused(v.verifyOidc(await sign('alice@example.com.evil.com')), 'domain_not_allowed');
    await expectRefused(v.verifyOidc(await sign('alice@evilexample.com')), 'domain_not_allowed');
    await expectRefused(v.verifyOidc(await sign('alice@sub.example.com')), 'domain_not_allowed');
    await expectRefused(v.verifyOidc(await sign('alice@evil.com@example.com')), 'domain_not_allowed');
    await expectRefused(v.verifyOidc(await sign('@example.com')), 'domain_not_allowed');
    expect((await v.verifyOidc(await sign('Alice@EXAMPLE.com'))).email).toBe('Alice@EXAMPLE.com');
  });

  it('does not trust an email the IdP marks unverified', async () => {
    const v = verifier({ allowedEmailDomains: ['example.com'] });
    const token = await idp.signIdToken({ now: now(), claims: { email_verified: false } });
    await expectRefused(v.verifyOidc(token), 'domain_not_allowed');
    const login = await verifier().verifyOidc(await idp.signIdToken({ now: now(), claims: { email_verified: false } }));
    expect(login.email).toBeUndefined();
    expect(login.attributes.email).toBeUndefined();
  });

  it('refuses garbage as malformed', async () => {
    const v = verifier();
    await expectRefused(v.verifyOidc('not-a-jwt'), 'malformed');
    await expectRefused(v.verifyOidc('a.b.c'), 'malformed');
    await expectRefused(v.verifyOidc(''), 'malformed');
    await expectRefused(v.verifyOidc(undefined as unknown as string), 'malformed');
    await expectRefused(v.verifyOidc('x'.repeat(70_000)), 'malformed');
  });

  it('refuses a signed token without sub as malformed', async () => {
    const token = await idp.signIdToken({ now: now(), claims: { sub: undefined } });
    await expectRefused(verifier().verifyOidc(token), 'malformed');
  });

  it('reports an unreachable JWKS as IdpUnavailableError, not as a refusal', async () => {
    idp.jwksFailureStatus = 503;
    const token = await idp.signIdToken({ now: now() });
    await expect(verifier().verifyOidc(token)).rejects.toBeInstanceOf(IdpUnavailableError);
  });
});
