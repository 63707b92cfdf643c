import { systemClock } from '@idlc/domain';
import { Engine, loadConfig } from '@idlc/engine';
import { resolve } from 'node:path';
import { createApp } from '../apps/api/src/app';
import { sign, SIGNATURE_HEADER } from '../apps/api/src/hr-feed/hmac';
import { bareFastify, BenchContext, BenchResult, ratio, tempDir, timeIt } from './lib';

const SECRET = 'bench-secret-0123456789abcdef';

function batch(b: number) {
  return {
    events: Array.from({ length: 1000 }, (_, i) => ({
      eventId: `bench-${b}-${i}`,
      type: 'hire',
      employeeId: `B${b}-${i}`,
      effectiveDate: '2026-01-05',
      attributes: { givenName: 'Bench', familyName: `User${i}`, email: `b${b}.${i}@example.com`, department: i % 2 ? 'Sales' : 'Engineering', employmentType: 'employee' },
    })),
  };
}

export async function hrWebhookBench(ctx: BenchContext): Promise<BenchResult[]> {
  const batches = ctx.quick ? 2 : 20;
  const dir = tempDir('hr');
  const config = loadConfig({ DATA_DIR: dir, HR_WEBHOOK_SECRETS: SECRET, BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), LOG_LEVEL: 'silent' });
  const engine = await Engine.open({ config, clock: systemClock });
  engine.start();
  const auth = { authorization: `Bearer ${(await engine.credentials.create({ name: 'bench-hr', scopes: ['hr:write'] })).token}` };
  const app = await createApp(engine, { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const bodies = Array.from({ length: batches }, (_, b) => JSON.stringify(batch(b)));

  const post = async (target: string, body: string) => {
    const res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth, [SIGNATURE_HEADER]: sign(SECRET, body, Math.floor(Date.now() / 1000)) },
      body,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
    return text;
  };
  let responseSize = 0;
  const engineRun = await timeIt(async () => {
    for (const body of bodies) responseSize = (await post(`${url}/hr/events`, body)).length;
  });
  await engine.projections.caughtUp();
  await app.close();
  await engine.close();

  // Baseline: a bare Fastify route that parses the same bodies and answers the same-sized JSON.
  const bare = await bareFastify(JSON.stringify({ pad: 'x'.repeat(Math.max(0, responseSize - 10)) }));
  const bareRun = await timeIt(async () => {
    for (const body of bodies) await post(bare.url, body);
  });
  await bare.close();
  const events = batches * 1000;
  const rate = Math.round(events / (engineRun.ms / 1000));
  const bareRate = Math.round(events / (bareRun.ms / 1000));
  return [
    {
      name: 'hr-webhook.batch1000',
      metric: 'HR hires in 1,000-event signed batches, end to end (validate, decide, append, respond)',
      unit: 'events/s',
      value: rate,
      baseline: { name: 'bare Fastify route parsing the same batches', value: bareRate },
      ratio: ratio(rate, bareRate),
      extra: { batches, msPerBatch: Math.round(engineRun.ms / batches) },
    },
  ];
}
