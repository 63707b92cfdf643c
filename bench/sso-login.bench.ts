import { systemClock } from '@idlc/domain';
import { Engine, loadConfig } from '@idlc/engine';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createApp } from '../apps/api/src/app';
import { loadEach } from './http-load';
import { bareFastify, BenchContext, BenchResult, ratio, tempDir } from './lib';
import { BenchIdp } from './oidc-signer';

/** Signs in parallel batches (jose's sign is async; the key work is native). */
async function mint(idp: BenchIdp, n: number, subject: (i: number) => string, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 500) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => idp.idToken(subject(i + k), `${tag}-${i + k}`)))));
  }
  return out;
}

/**
 * POST /sso/login over the real HTTP stack with verified ES256 ID tokens. Every token has its own
 * jti (a credential is spent once), so tokens are minted beforehand and each is sent exactly once.
 * First: JIT provisioning (a new subject per request), which creates the accounts; then logins of
 * those existing identities. Baseline: a bare Fastify POST route answering the same-sized JSON.
 */
export async function ssoLoginBench(ctx: BenchContext): Promise<BenchResult[]> {
  const subjects = ctx.quick ? 1_000 : 10_000;
  const logins = ctx.quick ? 4_000 : 60_000;
  const dir = tempDir('sso');
  const idp = await BenchIdp.start();
  const idpsFile = join(dir, 'idps.json');
  writeFileSync(idpsFile, JSON.stringify([idp.config()]));
  const config = loadConfig({ DATA_DIR: dir, SSO_IDPS_FILE: idpsFile, BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), LOG_LEVEL: 'silent' });
  const engine = await Engine.open({ config, clock: systemClock });
  engine.start();
  // The hook's caller authenticates like any client: the credential check is part of the measured path.
  const auth = { authorization: `Bearer ${(await engine.credentials.create({ name: 'bench-idp-hook', scopes: ['sso:login'] })).token}` };
  const app = await createApp(engine, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/sso/login`;
  const body = (t: string) => JSON.stringify({ idToken: t });

  const jitTokens = (await mint(idp, subjects, (i) => `bench-user-${i}`, 'jit')).map(body);
  const knownTokens = (await mint(idp, logins, (i) => `bench-user-${(i * 7919) % subjects}`, 'login')).map(body);

  const jit = await loadEach({ url, method: 'POST', bodies: jitTokens, headers: auth });
  const known = await loadEach({ url, method: 'POST', bodies: knownTokens, headers: auth });
  // The answer to a known login, for the baseline's body size.
  const sample = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: body(await idp.idToken('bench-user-1', 'sample')) });
  const sampleBody = await sample.text();
  if (sample.status !== 200) throw new Error(`sso login answered ${sample.status}: ${sampleBody.slice(0, 300)}`);
  await app.close();
  await engine.close();
  await idp.stop();
  rmSync(dir, { recursive: true, force: true });

  const bare = await bareFastify(sampleBody, 'POST');
  const baseline = await loadEach({ url: bare.url, method: 'POST', bodies: knownTokens, headers: auth });
  await bare.close();

  const p99Target = 10;
  const extra = (r: typeof jit) => ({ requests: r.requests, seconds: r.seconds, p50: r.p50, p99: r.p99, errors: r.errors, non2xx: r.non2xx });
  return [
    {
      name: 'sso-login.known',
      metric: 'POST /sso/login, verified ES256 ID token of an existing identity, 50 connections',
      unit: 'req/s',
      value: known.requestsPerSecond,
      baseline: { name: 'bare Fastify POST, same-sized JSON', value: baseline.requestsPerSecond },
      ratio: ratio(known.requestsPerSecond, baseline.requestsPerSecond),
      target: `>= 40% of baseline, p99 <= ${p99Target} ms`,
      met: known.non2xx === 0 && known.errors === 0 && known.requestsPerSecond >= 0.4 * baseline.requestsPerSecond && known.p99 <= p99Target,
      extra: { ...extra(known), baselineP50: baseline.p50, baselineP99: baseline.p99, subjects },
    },
    {
      name: 'sso-login.jit',
      metric: 'POST /sso/login, first login of a new subject (JIT provisioning), 50 connections',
      unit: 'req/s',
      value: jit.requestsPerSecond,
      baseline: { name: 'bare Fastify POST, same-sized JSON', value: baseline.requestsPerSecond },
      ratio: ratio(jit.requestsPerSecond, baseline.requestsPerSecond),
      met: jit.non2xx === 0 && jit.errors === 0,
      extra: extra(jit),
    },
  ];
}
