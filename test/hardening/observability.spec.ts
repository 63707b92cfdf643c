import { ManualClock } from '@idlc/domain';
import { Engine, loadConfig } from '@idlc/engine';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createApp } from '../../apps/api/src/app';
import { sign, SIGNATURE_HEADER } from '../../apps/api/src/hr-feed/hmac';
import { HR_SECRET, startTestApp, TestApp } from '../support/app';

const hire = (eventId: string, employeeId: string, extra: Record<string, unknown> = {}) => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Ada', familyName: 'Lovelace', email: `${employeeId.toLowerCase()}@example.com`, department: 'Engineering', title: 'Engineer', employmentType: 'employee', location: 'London' },
  ...extra,
});

/** Parses the Prometheus text format into `name{labels}` -> value. */
async function scrape(t: TestApp): Promise<{ contentType: string | null; samples: Map<string, number> }> {
  const res = await fetch(`${t.url}/metrics`);
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return { contentType: res.headers.get('content-type'), samples };
}

const sumOf = (samples: Map<string, number>, prefix: string) =>
  [...samples].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);

describe('/metrics in Prometheus format, scraped from the real server', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('counts requests by route pattern and status, and appended events by type', async () => {
    const before = await t.eventCount();
    const r = await t.hr(hire('m-1', 'M1001'));
    expect(r.status).toBe(200);
    const id = r.body.results[0].identityId;
    await t.settle();
    expect((await t.get(`/identities/${id}`)).status).toBe(200);
    expect((await t.get('/identities/3f1c1a2e-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await t.get('/no/such/route?x=1')).status).toBe(404);
    // A duplicate appends nothing and so counts nothing.
    expect((await t.hr(hire('m-1', 'M1001'))).body.results[0].status).toBe('duplicate');

    const { contentType, samples } = await scrape(t);
    expect(contentType).toContain('text/plain');
    expect(samples.get('idlc_http_requests_total{method="POST",route="/hr/events",status="200"}')).toBe(2);
    expect(samples.get('idlc_http_requests_total{method="GET",route="/identities/:id",status="200"}')).toBe(1);
    expect(samples.get('idlc_http_requests_total{method="GET",route="/identities/:id",status="404"}')).toBe(1);
    expect(samples.get('idlc_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    // Raw URLs never become labels.
    expect([...samples.keys()].some((k) => k.includes(id) || k.includes('/no/such'))).toBe(false);
    const appended = (await t.eventCount()) - before;
    expect(appended).toBeGreaterThan(1);
    expect(sumOf(samples, 'idlc_events_appended_total{')).toBe(appended);
    expect(samples.get('idlc_events_appended_total{type="IdentityHired"}')).toBe(1);
    expect(samples.get('idlc_event_store_head_position')).toBe(await t.engine.store.headPosition());
    expect(samples.get('idlc_projection_lag_events')).toBe(0);
    expect(samples.get('idlc_projection_lag_seconds')).toBe(0);
    // Messaging is off in this test: no Kafka samples rather than made-up zeros.
    expect([...samples.keys()].filter((k) => k.startsWith('idlc_kafka_'))).toEqual([]);
  });

  it('reports projection lag in events and in seconds of the oldest unapplied event', async () => {
    await t.hr(hire('l-0', 'L1000'));
    await t.settle();
    await t.engine.projections.stop();
    const head = await t.engine.store.headPosition();
    await t.hr(hire('l-1', 'L1001'));
    t.clock.advance(30_000);
    await t.hr(hire('l-2', 'L1002'));
    t.clock.advance(12_000);
    const lagging = (await scrape(t)).samples;
    expect(lagging.get('idlc_projection_lag_events')).toBe((await t.engine.store.headPosition()) - head);
    expect(lagging.get('idlc_projection_lag_seconds')).toBe(42);
    t.engine.projections.start();
    await t.settle();
    const caughtUp = (await scrape(t)).samples;
    expect(caughtUp.get('idlc_projection_lag_events')).toBe(0);
    expect(caughtUp.get('idlc_projection_lag_seconds')).toBe(0);
    expect(caughtUp.get('idlc_projection_position{projection="identities"}')).toBe(await t.engine.store.headPosition());
  });

  it("carries the request's correlation id into the events it appends, generated or the caller's", async () => {
    const send = async (body: unknown, headers: Record<string, string> = {}) => {
      const raw = JSON.stringify(body);
      const res = await fetch(`${t.url}/hr/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...t.auth, [SIGNATURE_HEADER]: sign(HR_SECRET, raw, Math.floor(t.clock.now().getTime() / 1000)), ...headers },
        body: raw,
      });
      return { header: res.headers.get('x-correlation-id'), body: (await res.json()) as any };
    };
    const given = await send(hire('k-1', 'K1001'), { 'x-correlation-id': 'hr-batch-77' });
    expect([given.header, given.body.correlationId]).toEqual(['hr-batch-77', 'hr-batch-77']);
    const generated = await send({ eventId: 'k-2', type: 'change', employeeId: 'K1001', effectiveDate: '2026-01-06', attributes: { title: 'Lead' } });
    expect(generated.header).toMatch(/^[0-9a-f-]{36}$/);
    expect(generated.body.correlationId).toBe(generated.header);
    const history = await t.get(`/identities/${given.body.results[0].identityId}/history`);
    const byType = history.body.events.map((e: any) => [e.type, e.correlationId]);
    expect(byType.find(([type]: string[]) => type === 'IdentityHired')).toEqual(['IdentityHired', 'hr-batch-77']);
    expect(byType.find(([type]: string[]) => type === 'AttributesChanged' || type === 'IdentityChanged')?.[1]).toBe(generated.header);
  });

  it('counts saga deadlines due and fired', async () => {
    await t.hr(hire('s-1', 'S1001'));
    const term = await t.hr({ eventId: 's-2', type: 'terminate', employeeId: 'S1001', effectiveDate: '2026-01-31', reason: 'resignation' });
    expect(term.body.results[0].status).toBe('applied');
    await t.settle();
    let s = (await scrape(t)).samples;
    expect([s.get('idlc_saga_deadlines_due_total'), s.get('idlc_saga_deadlines_fired_total')]).toEqual([0, 0]);
    const disabledBefore = s.get('idlc_events_appended_total{type="AccountDisabled"}') ?? 0;
    t.clock.set('2026-01-31T00:00:00Z');
    expect(await t.engine.scheduler.runDue()).toBe(1);
    s = (await scrape(t)).samples;
    expect([s.get('idlc_saga_deadlines_due_total'), s.get('idlc_saga_deadlines_fired_total')]).toEqual([1, 1]);
    // The scheduler appends a batch with appendMany: its events are counted like any other.
    expect(s.get('idlc_events_appended_total{type="AccountDisabled"}')).toBe(disabledBefore + 1);
  });
});

describe('/metrics while the Kafka broker hangs', () => {
  let broker: Server;
  const sockets = new Set<Socket>();
  let t: TestApp | undefined;
  beforeAll(async () => {
    // Takes connections and requests, never answers: kafkajs waits on every request it sends there.
    broker = createServer((s) => {
      sockets.add(s);
      s.on('data', () => undefined);
    });
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await t?.close();
    // Stop listening first, so kafkajs cannot reconnect, then end what is still open.
    const closed = new Promise((r) => broker.close(r));
    for (const s of sockets) s.destroy();
    await closed;
  });

  it('answers within the consumer-lag timeout, without lag samples rather than stale ones', async () => {
    const port = (broker.address() as { port: number }).port;
    t = await startTestApp({ KAFKA_BROKERS: `127.0.0.1:${port}` });
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const { samples } = await scrape(t);
      expect(Date.now() - t0).toBeLessThan(3500);
      expect(samples.get('idlc_kafka_up')).toBe(0);
      expect([...samples.keys()].filter((k) => k.startsWith('idlc_kafka_consumer_'))).toEqual([]);
      expect(samples.get('idlc_projection_lag_events')).toBe(0);
    }
  });
});

describe('structured JSON logs with a correlation id per request', () => {
  let dir: string;
  let engine: Engine;
  let app: Awaited<ReturnType<typeof createApp>>;
  let url: string;
  let token: string;
  const lines: any[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idlc-obs-'));
    const config = loadConfig({ DATA_DIR: dir, HR_WEBHOOK_SECRETS: 'x'.repeat(24), BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), LOG_LEVEL: 'info' });
    engine = await Engine.open({ config, clock: new ManualClock('2026-01-05T09:00:00.000Z') });
    token = (await engine.credentials.create({ name: 'reader', scopes: ['audit:read'] })).token;
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    app = await createApp(engine, { logger: false, logDestination: sink });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(async () => {
    await app.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("echoes the caller's id, logs one JSON line with it, the route pattern and the status", async () => {
    const res = await fetch(`${url}/identities/3f1c1a2e-0000-4000-8000-000000000000?secret=1`, { headers: { 'x-correlation-id': 'req-abc.123', authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-correlation-id')).toBe('req-abc.123');
    await new Promise((r) => setImmediate(r));
    const mine = lines.filter((l) => l.correlationId === 'req-abc.123');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      level: 'info',
      service: 'idlc-api',
      msg: 'request completed',
      method: 'GET',
      route: '/identities/:id',
      path: '/identities/3f1c1a2e-0000-4000-8000-000000000000',
      status: 404,
    });
    expect(typeof mine[0].durationMs).toBe('number');
    // The credential is never written to the logs, nor is the query string.
    expect(JSON.stringify(lines)).not.toContain(token.slice(-20));
    expect(mine[0].credentialId).toBe(token.split('_')[1]);
    expect(typeof mine[0].time).toBe('string');
  });

  it('generates an id when none (or an unsafe one) is sent, and answers with it', async () => {
    const none = await fetch(`${url}/health`);
    const unsafe = await fetch(`${url}/health`, { headers: { 'x-correlation-id': 'a b<script>'.repeat(20) } });
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const r of [none, unsafe]) expect(r.headers.get('x-correlation-id')).toMatch(uuid);
    expect(none.headers.get('x-correlation-id')).not.toBe(unsafe.headers.get('x-correlation-id'));
    await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => l.correlationId === none.headers.get('x-correlation-id')).map((l) => [l.route, l.status])).toEqual([['/health', 200]]);
  });
});
