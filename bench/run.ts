import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { appendsBench } from './appends.bench';
import { deadlineSweepBench } from './deadline-sweep.bench';
import { hrWebhookBench } from './hr-webhook.bench';
import { BenchContext, BenchResult, machineCalibration } from './lib';
import { replayBench } from './replay.bench';
import { scimFilterBench } from './scim-filter.bench';
import { ssoLoginBench } from './sso-login.bench';

/** Every benchmark, each against a baseline measured in the same run. `--quick` is CI's smoke size. */
const BENCHES: Record<string, (ctx: BenchContext) => Promise<BenchResult[]>> = {
  appends: appendsBench,
  replay: replayBench,
  'hr-webhook': hrWebhookBench,
  'sso-login': ssoLoginBench,
  'deadline-sweep': deadlineSweepBench,
  'scim-filter': scimFilterBench,
};

async function main() {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
  const out = resolve(args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? 'bench/results/report.json');
  const ctx: BenchContext = { quick, log: (m) => process.stderr.write(`${m}\n`) };
  const results: BenchResult[] = [];
  const started = Date.now();
  const machine = machineCalibration();
  ctx.log(`machine: 200,000 JSON round trips ${machine.jsonRoundTripsMs} ms, SHA-256 of 64 MiB ${machine.sha256Of64MiBMs} ms, load ${machine.loadAverage1m}`);
  for (const [name, fn] of Object.entries(BENCHES)) {
    if (only && !only.includes(name)) continue;
    ctx.log(`running ${name}${quick ? ' (quick)' : ''}...`);
    results.push(...(await fn(ctx)));
  }
  const report = {
    quick,
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    node: process.version,
    cpus: require('node:os').cpus().length,
    machine,
    results,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.table(
    results.map((r) => ({
      benchmark: r.name,
      value: `${r.value} ${r.unit}`,
      baseline: `${r.baseline.value} (${r.baseline.name})`,
      ratio: r.ratio,
      target: r.target ?? '',
      met: r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    })),
  );
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
