import { ManualClock } from '@idlc/domain';
import { Engine, loadConfig, SCOPES } from '@idlc/engine';
import { PostgresDatabase } from '@idlc/sql';
import { randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApp } from '../../apps/api/src/app';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';

export const HR_SECRET = 'test-hr-secret-0123456789';

export interface TestApp {
  url: string;
  engine: Engine;
  app: NestFastifyApplication;
  clock: ManualClock;
  dir: string;
  /** POSTs a body to /hr/events signed the way the HR system signs it. */
  hr(body: unknown, opts?: { secret?: string; timestamp?: number; raw?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  get(path: string): Promise<{ status: number; body: any; headers: Headers }>;
  /** GET with the body as raw text, for responses that are not one JSON document (JSON lines, CSV). */
  getText(path: string): Promise<{ status: number; text: string; headers: Headers }>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  /** A credential holding every scope; hr/get/post send it unless the caller sets authorization. */
  token: string;
  /** `{ authorization: 'Bearer <token>' }` for raw fetch calls. */
  auth: Record<string, string>;
  /** Creates another credential (e.g. to test a missing scope) and returns its token. */
  credential(scopes: string[], name?: string): Promise<string>;
  /** Waits until every projection has applied everything appended so far. */
  settle(): Promise<void>;
  eventCount(): Promise<number>;
  close(): Promise<void>;
}

async function parse(res: Response) {
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Starts the real HTTP server on an ephemeral port over a fresh SQLite file, with a test clock.
 * `ownsSchema: false`: another app of the test made the PostgreSQL schema this one shares (a second
 * process on one database) and drops it when it closes; this one must close first.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  clock = new ManualClock('2026-01-05T09:00:00.000Z'),
  { ownsSchema = true }: { ownsSchema?: boolean } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'idlc-app-'));
  // On PostgreSQL every app gets its own schema, dropped on close.
  const schema = env.EVENT_STORE === 'postgres' ? env.DATABASE_SCHEMA ?? `t_${randomUUID().replace(/-/g, '').slice(0, 12)}` : undefined;
  if (schema) env = { ...env, DATABASE_SCHEMA: schema };
  const config = loadConfig({
    DATA_DIR: dir,
    HR_WEBHOOK_SECRETS: HR_SECRET,
    BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'),
    LOG_LEVEL: 'silent',
    ...env,
  });
  const engine = await Engine.open({ config, clock });
  engine.start();
  const token = (await engine.credentials.create({ name: 'test-suite', scopes: [...SCOPES] })).token;
  const auth = { authorization: `Bearer ${token}` };
  const app = await createApp(engine, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const t: TestApp = {
    url,
    engine,
    app,
    clock,
    dir,
    token,
    auth,
    credential: async (scopes, name = 'test-credential') => (await engine.credentials.create({ name, scopes })).token,
    async hr(body, opts = {}) {
      const raw = opts.raw ?? JSON.stringify(body);
      const ts = opts.timestamp ?? Math.floor(clock.now().getTime() / 1000);
      const res = await fetch(`${url}/hr/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth, [SIGNATURE_HEADER]: sign(opts.secret ?? HR_SECRET, raw, ts) },
        body: raw,
      });
      return parse(res);
    },
    async get(path) {
      return parse(await fetch(`${url}${path}`, { headers: auth }));
    },
    async getText(path) {
      const res = await fetch(`${url}${path}`, { headers: auth });
      return { status: res.status, text: await res.text(), headers: res.headers };
    },
    async post(path, body, headers = {}) {
      return parse(
        await fetch(`${url}${path}`, {
          method: 'POST',
          // No body, no content type: what a client sends to an endpoint whose body is optional.
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...auth, ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
    },
    settle: () => engine.projections.caughtUp(),
    // count(*), not the head position: PostgreSQL positions may have holes from rolled-back appends.
    eventCount: async () => Number((await engine.readDb.get<{ n: number }>('SELECT count(*) AS n FROM events'))!.n),
    async close() {
      await app.close();
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
      if (schema && ownsSchema) {
        const admin = new PostgresDatabase({ connectionString: env.DATABASE_URL });
        await admin.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.close();
      }
    },
  };
  return t;
}
