import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal OIDC IdP for benchmarks: one signing key served as a JWKS over node:http on 127.0.0.1.
 * (test/support/test-idp.ts is excluded from the build, so the bench carries its own.)
 * RS256 by default: OpenID Connect's default ID token algorithm, and the one Entra ID, Okta and
 * Google sign with; ES256 for the row that shows an elliptic-curve IdP.
 */
export type BenchAlg = 'RS256' | 'ES256';

export class BenchIdp {
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    private readonly privateKey: KeyLike,
    readonly kid: string,
    /** For the verify-only reference route (bench/lib.ts). */
    readonly publicKey: KeyLike,
    readonly alg: BenchAlg,
  ) {}

  static readonly clientId = 'idlc-bench-client';

  static async start(alg: BenchAlg = 'RS256'): Promise<BenchIdp> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `bench-${alg.toLowerCase()}`;
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }] });
    const server = createServer((req, res) => {
      if (req.url === '/jwks') {
        res.setHeader('content-type', 'application/json');
        res.end(jwks);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    return new BenchIdp(server, `http://127.0.0.1:${port}`, privateKey, kid, publicKey, alg);
  }

  /** Entry for SSO_IDPS_FILE. */
  config() {
    return {
      id: 'bench-oidc',
      kind: 'oidc',
      issuer: this.issuer,
      jwksUri: `${this.issuer}/jwks`,
      audience: BenchIdp.clientId,
      allowedAlgorithms: [this.alg],
      attributeMapping: { email: 'email', given_name: 'givenName', family_name: 'familyName' },
      jit: true,
      defaultRole: 'sso-user',
    };
  }

  /** A signed ID token for `subject`, valid for 10 minutes, with a unique jti (replay-protected). */
  idToken(subject: string, jti: string): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({ email: `${subject}@example.com`, given_name: 'Bench', family_name: subject, jti })
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(BenchIdp.clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 600)
      .sign(this.privateKey);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
