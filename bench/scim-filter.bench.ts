import { systemClock, type IdentityCommand } from '@idlc/domain';
import { Engine, loadConfig, normalizeResource, initialAttributes, USER_SCHEMA } from '@idlc/engine';
import { newId } from '@idlc/event-store';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp } from '../apps/api/src/app';
import { AlternatedRun, alternate, loadEach } from './http-load';
import { bareFastify, BenchContext, BenchResult, ratio, tempDir } from './lib';

const TOKEN = 'bench-scim-token-0123456789';

const userName = (i: number) => `bench.user${i}@example.com`;

/**
 * GET /scim/v2/Users?filter=userName eq "…" over N SCIM users, rotating through existing userNames,
 * over the real HTTP stack with a bearer token. The users are created with the same commands a SCIM
 * POST issues (ProvisionAccount with the userName key + ReplaceScimResource) through
 * engine.commands.execute, 8 in flight, and projected once at the end: POSTing 100,000 users over
 * HTTP waits for the projection after each one. Baseline: a bare Fastify GET answering the same-sized
 * JSON, measured in turns with the engine.
 */
export async function scimFilterBench(ctx: BenchContext): Promise<BenchResult[]> {
  const n = ctx.quick ? 5_000 : 100_000;
  const requests = ctx.quick ? 4_000 : 40_000;
  const dir = tempDir('scim');
  const config = loadConfig({ DATA_DIR: dir, SCIM_TOKENS: TOKEN, BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), LOG_LEVEL: 'silent' });
  const engine = await Engine.open({ config, clock: systemClock });

  const t0 = performance.now();
  const create = async (i: number) => {
    const { doc } = normalizeResource(USER_SCHEMA, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: userName(i),
      name: { givenName: 'Bench', familyName: `User ${i}` },
      emails: [{ value: userName(i), type: 'work', primary: true }],
      active: true,
    });
    const cmds: IdentityCommand[] = [
      { kind: 'ProvisionAccount', source: 'scim', attributes: initialAttributes(doc), keys: [{ kind: 'scim-username', value: doc.userName as string }] },
      { kind: 'ReplaceScimResource', resource: doc },
    ];
    const out = await engine.commands.execute(newId(), cmds, { metadata: { source: 'scim', actor: 'bench', correlationId: `bench-${i}` } });
    if (out.rejection) throw new Error(`user ${i}: ${JSON.stringify(out.rejection)}`);
  };
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < n) await create(next++);
  }));
  const appended = performance.now();
  await engine.projections.runToHead();
  const buildMs = performance.now() - t0;
  ctx.log(`  built ${n} SCIM users in ${Math.round(buildMs)} ms (appends ${Math.round(appended - t0)} ms)`);

  engine.start();
  const app = await createApp(engine, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  // Rotating, evenly spread over all users (a fixed stride, so every request is a different user at first).
  const paths = Array.from({ length: 1000 }, (_, k) => `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${userName((k * 7919) % n)}"`)}`);
  const headers = { authorization: `Bearer ${TOKEN}` };
  const sample = await fetch(`${url}${paths[1]}`, { headers });
  const sampleBody = await sample.text();
  const parsed = JSON.parse(sampleBody) as { totalResults?: number };
  if (sample.status !== 200 || parsed.totalResults !== 1) throw new Error(`SCIM filter answered ${sample.status}: ${sampleBody.slice(0, 300)}`);
  const bare = await bareFastify(sampleBody, 'GET');
  const barePath = new URL(bare.url).pathname;
  const barePaths = paths.map(() => barePath);
  // Unmeasured warm-up (JIT, SQLite page cache), the same for the bare baseline.
  const warmup = Math.min(requests, 4_000);
  await loadEach({ url, method: 'GET', paths, headers, amount: warmup });
  await loadEach({ url: bare.url, method: 'GET', paths: barePaths, headers, amount: warmup });
  // The engine and the bare route take turns (see alternate() in http-load.ts), at 50 connections
  // and then at a provisioning client's own load: Entra ID's guideline for SCIM apps is 25
  // requests/s per provisioning job, and Okta and Entra send a job's requests a few at a time; 10
  // connections is several such jobs at once.
  const rounds = ctx.quick ? 2 : 4;
  const amount = Math.round(requests / rounds);
  const at50 = await alternate(rounds, {
    engine: () => loadEach({ url, method: 'GET', paths, headers, amount }),
    bare: () => loadEach({ url: bare.url, method: 'GET', paths: barePaths, headers, amount }),
  });
  const at10 = await alternate(rounds, {
    engine: () => loadEach({ url, method: 'GET', paths, headers, amount, connections: 10 }),
    bare: () => loadEach({ url: bare.url, method: 'GET', paths: barePaths, headers, amount, connections: 10 }),
  });
  await bare.close();
  await app.close();
  await engine.close();
  rmSync(dir, { recursive: true, force: true });

  /** The lookups against the bare route at the same concurrency; the target is p99 <= 10 ms. */
  const row = (name: string, metric: string, r: AlternatedRun, bareRun: AlternatedRun, bareName: string, more: Record<string, unknown> = {}): BenchResult => ({
    name,
    metric,
    unit: 'req/s',
    value: r.requestsPerSecond,
    baseline: { name: bareName, value: bareRun.requestsPerSecond },
    ratio: ratio(r.requestsPerSecond, bareRun.requestsPerSecond),
    target: 'p99 <= 10 ms',
    met: r.non2xx === 0 && r.errors === 0 && r.p99 <= 10,
    extra: {
      requests: r.requests,
      p50: r.p50,
      p99: r.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      baselineP50: bareRun.p50,
      baselineP99: bareRun.p99,
      rounds: { engine: r.roundRates, bare: bareRun.roundRates },
      ...more,
    },
  });
  return [
    row(
      'scim-filter.userName-eq',
      `GET /scim/v2/Users?filter=userName eq "…" over ${n.toLocaleString('en')} users, bearer token, 50 connections`,
      at50.engine,
      at50.bare,
      'bare Fastify GET, same-sized JSON',
      { users: n, buildMs: Math.round(buildMs), responseBytes: sampleBody.length },
    ),
    row('scim-filter.userName-eq.10-connections', `the same lookups at a provisioning client's concurrency: 10 connections`, at10.engine, at10.bare, 'bare Fastify GET, same-sized JSON, 10 connections'),
  ];
}
