import {
  CredentialVerifier,
  LoginRefused,
  type RefusalType,
  type TrustedIdpConfig,
} from '@idlc/sso-verification';
import {
  ManualClock,
  NAMEID_FORMAT,
  TestSamlIdp,
  fromBase64,
  injectCommentInNameId,
  stripSignatures,
  tamper,
  toBase64,
  wrapAssertion,
  type SamlResponseOptions,
} from '../../../test/support/test-idp';

async function expectRefused(p: Promise<unknown>, type: RefusalType): Promise<LoginRefused> {
  let refusal: LoginRefused | undefined;
  try {
    await p;
  } catch (e) {
    if (!(e instanceof LoginRefused)) throw e;
    refusal = e;
  }
  if (!refusal) throw new Error(`expected refusal "${type}", but the credential was accepted`);
  expect({ type: refusal.type, detail: refusal.detail }).toEqual({ type, detail: expect.any(String) });
  return refusal;
}

const mapping = {
  email: 'email',
  givenName: 'givenName',
  surname: 'familyName',
  department: 'department',
  'urn:oid:2.16.840.1.113730.3.1.3': 'employeeId',
};

describe('CredentialVerifier.verifySaml', () => {
  let idp: TestSamlIdp;
  let impostor: TestSamlIdp; // same issuer, different key: not trusted
  let stranger: TestSamlIdp; // another issuer entirely
  let clock: ManualClock;

  beforeAll(async () => {
    idp = await TestSamlIdp.create();
    impostor = await TestSamlIdp.create({ issuer: idp.issuer });
    stranger = await TestSamlIdp.create({ issuer: 'https://stranger-idp.test/metadata' });
  });
  beforeEach(() => {
    clock = new ManualClock();
  });

  function verifier(overrides: Partial<TrustedIdpConfig> = {}) {
    return new CredentialVerifier([idp.config({ id: 'corp-saml', attributeMapping: mapping, ...overrides })], {
      clock,
    });
  }
  const opts = (o: SamlResponseOptions = {}): SamlResponseOptions => ({ now: clock.now(), ...o });

  it('accepts a valid signed assertion and maps the attributes (multi-valued: first value)', async () => {
    const response = idp.response(
      opts({
        assertionId: '_assertion-1',
        sessionIndex: '_session-1',
        attributes: {
          email: 'alice@example.com',
          givenName: 'Alice',
          surname: 'Example',
          department: ['Engineering', 'Research'],
          'urn:oid:2.16.840.1.113730.3.1.3': '4711',
          unmapped: 'ignored',
        },
      }),
    );
    const login = await verifier().verifySaml(response, 'relay-123');
    expect(login).toEqual({
      idpId: 'corp-saml',
      kind: 'saml',
      issuer: idp.issuer,
      subject: 'a1b2c3d4-persistent-id',
      credentialId: '_assertion-1',
      expiresAt: new Date(clock.now().getTime() + (300 + 60) * 1000),
      issuedAt: clock.now(),
      email: 'alice@example.com',
      attributes: {
        email: 'alice@example.com',
        givenName: 'Alice',
        familyName: 'Example',
        department: 'Engineering',
        employeeId: '4711',
      },
      rawClaims: expect.objectContaining({
        issuer: idp.issuer,
        nameID: 'a1b2c3d4-persistent-id',
        nameIDFormat: NAMEID_FORMAT.persistent,
        sessionIndex: '_session-1',
        attributes: expect.objectContaining({ department: ['Engineering', 'Research'], unmapped: ['ignored'] }),
      }),
      relayState: 'relay-123',
    });
  });

  it('maps by FriendlyName when the mapping names it', async () => {
    const response = idp.response(
      opts({
        attributes: { 'urn:oid:0.9.2342.19200300.100.1.3': 'bob@example.com' },
        friendlyNames: { 'urn:oid:0.9.2342.19200300.100.1.3': 'mail' },
      }),
    );
    const login = await verifier({ attributeMapping: { mail: 'email' } }).verifySaml(response);
    expect(login.email).toBe('bob@example.com');
    expect(login.attributes).toEqual({ email: 'bob@example.com' });
  });

  it('accepts a response where both the response and the assertion are signed', async () => {
    const login = await verifier({ wantResponseSigned: true }).verifySaml(idp.response(opts({ sign: 'both' })));
    expect(login.subject).toBe('a1b2c3d4-persistent-id');
  });

  it('refuses a response whose content was changed after signing', async () => {
    const xml = idp.responseXml(opts({ attributes: { email: 'alice@example.com', department: 'Engineering' } }));
    await expectRefused(
      verifier().verifySaml(toBase64(tamper(xml, '>a1b2c3d4-persistent-id<', '>admin<'))),
      'invalid_signature',
    );
    await expectRefused(
      verifier().verifySaml(toBase64(tamper(xml, '>Engineering<', '>Finance<'))),
      'invalid_signature',
    );
    // the untampered one is fine (the test can tell the difference)
    expect((await verifier().verifySaml(toBase64(xml))).attributes.department).toBe('Engineering');
  });

  it.each(['sibling-before', 'sibling-after', 'advice', 'copied-signature'] as const)(
    'refuses signature wrapping (%s)',
    async (mode) => {
      const signed = idp.responseXml(opts());
      const wrapped = wrapAssertion(signed, 'admin@example.com', mode);
      expect(wrapped).toContain('admin@example.com');
      await expectRefused(verifier().verifySaml(toBase64(wrapped)), 'invalid_signature');
    },
  );

  it('refuses signature wrapping around a signed response', async () => {
    const signed = idp.responseXml(opts({ sign: 'both' }));
    const wrapped = wrapAssertion(signed, 'admin@example.com', 'sibling-before');
    await expectRefused(verifier({ wantAssertionsSigned: false }).verifySaml(toBase64(wrapped)), 'invalid_signature');
  });

  it('refuses an unsigned response', async () => {
    await expectRefused(verifier().verifySaml(idp.response(opts({ sign: 'none' }))), 'invalid_signature');
    await expectRefused(
      verifier({ wantAssertionsSigned: false }).verifySaml(idp.response(opts({ sign: 'none' }))),
      'invalid_signature',
    );
    await expectRefused(
      verifier().verifySaml(toBase64(stripSignatures(idp.responseXml(opts({ sign: 'both' }))))),
      'invalid_signature',
    );
  });

  it('refuses an unsigned assertion inside a signed response unless configured to accept it', async () => {
    const responseOnly = idp.response(opts({ sign: 'response' }));
    await expectRefused(verifier().verifySaml(responseOnly), 'invalid_signature');
    const login = await verifier({ wantAssertionsSigned: false }).verifySaml(responseOnly);
    expect(login.subject).toBe('a1b2c3d4-persistent-id');
  });

  it('refuses a signed assertion inside an unsigned response when the response must be signed', async () => {
    const assertionOnly = idp.response(opts({ sign: 'assertion' }));
    await expectRefused(verifier({ wantResponseSigned: true }).verifySaml(assertionOnly), 'invalid_signature');
  });

  it('refuses a response signature that does not verify even if the assertion signature does', async () => {
    const xml = idp.responseXml(opts({ sign: 'both' }));
    // change a response-level attribute: only the response signature breaks
    const broken = tamper(xml, 'Version="2.0" IssueInstant', 'Version="2.0" Consent="urn:x" IssueInstant');
    await expectRefused(verifier().verifySaml(toBase64(broken)), 'invalid_signature');
  });

  it('refuses a response signed with a certificate we do not trust', async () => {
    await expectRefused(verifier().verifySaml(impostor.response(opts())), 'invalid_signature');
    await expectRefused(verifier().verifySaml(impostor.response(opts({ sign: 'both' }))), 'invalid_signature');
  });

  it('accepts either certificate while two are configured (rotation)', async () => {
    const rotating = await TestSamlIdp.create({ issuer: 'https://rotating-idp.test/metadata' });
    const oldCert = rotating.certificatePem;
    const signedWithOld = rotating.response(opts({ nameId: 'old-key-user' }));
    const newCert = await rotating.rotateKey();
    const signedWithNew = rotating.response(opts({ nameId: 'new-key-user' }));

    const both = new CredentialVerifier([rotating.config({ signingCertificates: [oldCert, newCert] })], { clock });
    expect((await both.verifySaml(signedWithOld)).subject).toBe('old-key-user');
    expect((await both.verifySaml(signedWithNew)).subject).toBe('new-key-user');

    const onlyOld = new CredentialVerifier([rotating.config({ signingCertificates: [oldCert] })], { clock });
    await expectRefused(onlyOld.verifySaml(rotating.response(opts({ nameId: 'new-key-user' }))), 'invalid_signature');
  });

  it('refuses an expired assertion (Conditions NotOnOrAfter)', async () => {
    const past = new Date(clock.now().getTime() - 600_000);
    const r = idp.response(opts({ now: past, subjectNotOnOrAfter: new Date(clock.now().getTime() + 300_000) }));
    await expectRefused(verifier().verifySaml(r), 'expired');
  });

  it('refuses an expired subject confirmation (SubjectConfirmationData NotOnOrAfter)', async () => {
    const r = idp.response(opts({ subjectNotOnOrAfter: new Date(clock.now().getTime() - 61_000) }));
    await expectRefused(verifier().verifySaml(r), 'expired');
    // within the skew
    const ok = idp.response(opts({ subjectNotOnOrAfter: new Date(clock.now().getTime() - 30_000) }));
    expect((await verifier().verifySaml(ok)).subject).toBe('a1b2c3d4-persistent-id');
  });

  it('refuses an assertion that is not yet valid (NotBefore in the future)', async () => {
    const r = idp.response(opts({ notBefore: new Date(clock.now().getTime() + 120_000) }));
    await expectRefused(verifier().verifySaml(r), 'expired');
    clock.advanceSeconds(61); // now + skew >= NotBefore
    expect((await verifier().verifySaml(r)).subject).toBe('a1b2c3d4-persistent-id');
  });

  it('uses the injected clock, not the system clock', async () => {
    const r = idp.response(opts()); // valid now
    clock.advanceSeconds(3600);
    await expectRefused(verifier().verifySaml(r), 'expired');
  });

  it('refuses a wrong audience', async () => {
    await expectRefused(
      verifier().verifySaml(idp.response(opts({ audience: 'https://other-sp.test' }))),
      'wrong_audience',
    );
    await expectRefused(verifier().verifySaml(idp.response(opts({ audience: null }))), 'wrong_audience');
  });

  it('refuses a wrong recipient or destination', async () => {
    await expectRefused(
      verifier().verifySaml(idp.response(opts({ recipient: 'https://other-sp.test/acs' }))),
      'wrong_audience',
    );
    await expectRefused(
      verifier().verifySaml(idp.response(opts({ destination: 'https://other-sp.test/acs' }))),
      'wrong_audience',
    );
  });

  it('refuses a replayed assertion ID', async () => {
    const v = verifier();
    const r = idp.response(opts({ assertionId: '_replay-me' }));
    expect((await v.verifySaml(r)).credentialId).toBe('_replay-me');
    await expectRefused(v.verifySaml(r), 'replayed');
  });

  it('does not truncate a NameID split by a comment', async () => {
    const nameId = 'user@example.com.evil.com';
    const signed = idp.responseXml(opts({ nameId, nameIdFormat: NAMEID_FORMAT.emailAddress, attributes: {} }));
    const injected = injectCommentInNameId(signed, nameId, 'user@example.com'.length);
    expect(injected).toContain('user@example.com<!---->.evil.com');

    const login = await verifier().verifySaml(toBase64(injected));
    expect(login.subject).toBe('user@example.com.evil.com');
    expect(login.email).toBe('user@example.com.evil.com');

    const restricted = idp.responseXml(opts({ nameId, nameIdFormat: NAMEID_FORMAT.emailAddress, attributes: {} }));
    await expectRefused(
      verifier({ allowedEmailDomains: ['example.com'] }).verifySaml(
        toBase64(injectCommentInNameId(restricted, nameId, 'user@example.com'.length)),
      ),
      'domain_not_allowed',
    );
  });

  it('refuses an email domain that is not allowed', async () => {
    const v = verifier({ allowedEmailDomains: ['example.com'] });
    await expectRefused(
      v.verifySaml(idp.response(opts({ attributes: { email: 'eve@example.com.evil.com' } }))),
      'domain_not_allowed',
    );
    await expectRefused(v.verifySaml(idp.response(opts({ attributes: {} }))), 'domain_not_allowed');
    expect((await v.verifySaml(idp.response(opts({ attributes: { email: 'eve@Example.COM' } })))).email).toBe(
      'eve@Example.COM',
    );
  });

  it('refuses an unknown issuer (selected by the Response Issuer)', async () => {
    await expectRefused(verifier().verifySaml(stranger.response(opts())), 'unknown_issuer');
  });

  it('refuses an assertion whose Issuer differs from the trusted Response Issuer', async () => {
    // signed with the trusted key, but the assertion claims another issuer
    const r = idp.response(opts({ issuer: 'https://someone-else.test', responseIssuer: idp.issuer }));
    await expectRefused(verifier().verifySaml(r), 'unknown_issuer');
  });

  it('refuses a transient NameID (it cannot key a user)', async () => {
    const r = idp.response(opts({ nameIdFormat: NAMEID_FORMAT.transient, nameId: '_t123' }));
    await expectRefused(verifier().verifySaml(r), 'malformed');
  });

  it('refuses an error status', async () => {
    const r = idp.response(opts({ statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }));
    await expectRefused(verifier().verifySaml(r), 'malformed');
  });

  it('refuses garbage as malformed', async () => {
    const v = verifier();
    await expectRefused(v.verifySaml(''), 'malformed');
    await expectRefused(v.verifySaml('%%% not base64 %%%'), 'malformed');
    await expectRefused(v.verifySaml(toBase64('<not-closed')), 'malformed');
    await expectRefused(v.verifySaml(toBase64('<foo xmlns="urn:x"/>')), 'malformed');
    const dtd = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>` + fromBase64(idp.response(opts()));
    await expectRefused(v.verifySaml(toBase64(dtd)), 'malformed');
  });
});
