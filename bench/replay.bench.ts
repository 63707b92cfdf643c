import { systemClock } from '@idlc/domain';
import { Engine, loadConfig } from '@idlc/engine';
import { newId } from '@idlc/event-store';
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BenchContext, BenchResult, loadAverage1m, peakRssMb, ratio, tempDir, timeIt } from './lib';
import { history } from './replay-mix';

export async function replayBench(ctx: BenchContext): Promise<BenchResult[]> {
  // REPLAY_IDENTITIES picks a size between the quick (5,000) and the full (100,000) run.
  const identities = Number(process.env.REPLAY_IDENTITIES) || (ctx.quick ? 5000 : 100_000);
  const dir = tempDir('replay');
  const config = loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: resolve(__dirname, '../../config/birthright.yaml'), WORKER_MODE: 'api' });
  const engine = await Engine.open({ config, clock: systemClock });
  const gen = await timeIt(async () => {
    for (let i = 0; i < identities; i++) {
      // Identity ids as the engine mints them for hires, SCIM users and first logins (UUIDv7).
      await engine.store.append(`identity-${newId()}`, history(i).map((e) => ({ ...e, data: e.data as any, metadata: { source: 'bench' } })), 'no_stream');
    }
  });
  const total = await engine.store.headPosition();
  ctx.log(`replay: generated ${total} events over ${identities} identities in ${Math.round(gen.ms)} ms`);

  // Baseline: read every row and parse its JSON, with no projection work.
  const raw = new Database(join(dir, 'idlc.db'), { readonly: true });
  const read = await timeIt(async () => {
    let n = 0;
    for (const r of raw.prepare('SELECT data, metadata FROM events ORDER BY position').iterate() as IterableIterator<{ data: string; metadata: string }>) {
      JSON.parse(r.data);
      JSON.parse(r.metadata);
      n++;
    }
    return n;
  });
  raw.close();
  const readRate = Math.round(read.result / (read.ms / 1000));

  await engine.projections.reset();
  // Where the time goes: each projection's apply(), reading the events, and the rest (commits,
  // checkpoint rows, the deferred CREATE INDEX at the end), in wall-clock ms.
  const spent: Record<string, number> = {};
  const timed = <A extends unknown[], R>(label: string, fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    const t0 = performance.now();
    try {
      return await fn(...a);
    } finally {
      spent[label] = (spent[label] ?? 0) + performance.now() - t0;
    }
  };
  for (const p of engine.projections.projections) p.apply = timed(p.name, p.apply.bind(p));
  engine.store.readAll = timed('read events', engine.store.readAll.bind(engine.store));
  const loadBefore = loadAverage1m();
  const cpu0 = process.cpuUsage();
  const rebuild = await timeIt(() => engine.projections.runToHead());
  const cpu = process.cpuUsage(cpu0);
  const rate = Math.round(total / (rebuild.ms / 1000));
  const inside = Object.values(spent).reduce((a, b) => a + b, 0);
  const breakdownMs = Object.fromEntries([...Object.entries(spent), ['commits, checkpoints, index builds', rebuild.ms - inside]].map(([k, v]) => [k, Math.round(v as number)]));
  const perProjectionEventsPerSecond = Object.fromEntries(engine.projections.projections.map((p) => [p.name, Math.round(total / (spent[p.name] / 1000))]));
  const rows = await engine.readDb.get<{ n: number }>('SELECT count(*) AS n FROM identities');
  await engine.close();
  // A million events and their read models take most of a gigabyte.
  rmSync(dir, { recursive: true, force: true });
  return [
    {
      name: 'replay.rebuild',
      metric: `rebuild every projection from ${total} events (${identities} identities)`,
      unit: 'events/s',
      value: rate,
      baseline: { name: 'raw SQLite read + JSON.parse of every event', value: readRate },
      ratio: ratio(rate, readRate),
      target: '>= 200,000 events/s',
      met: rate >= 200_000,
      extra: {
        events: total,
        seconds: Math.round(rebuild.ms) / 1000,
        cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
        peakRssMb: peakRssMb(),
        identitiesProjected: Number(rows?.n),
        loadAverage1m: { before: loadBefore, after: loadAverage1m() },
        breakdownMs,
        perProjectionEventsPerSecond,
      },
    },
  ];
}
