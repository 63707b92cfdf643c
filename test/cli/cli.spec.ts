import { Engine, loadConfig } from '@idlc/engine';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HR_SECRET, startTestApp } from '../support/app';
import { runCli } from '../support/cli';

const ROOT = resolve(__dirname, '../..');
const POLICY = resolve(ROOT, 'config/birthright.yaml');

const cli = runCli;

const hire = (eventId: string, employeeId: string, department: string) => ({
  eventId,
  type: 'hire',
  employeeId,
  effectiveDate: '2026-01-05',
  attributes: { givenName: 'Grace', familyName: 'Hopper', email: `${employeeId}@example.com`, department, employmentType: 'employee', location: 'London' },
});

describe('idlc CLI, run as an operator would', () => {
  it('reconcile-birthright recomputes every identity after the policy file changed; manual grants stay', async () => {
    const t = await startTestApp();
    const dir = t.dir;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await t.hr(hire(`h-${i}`, `C${i}`, i % 2 ? 'Engineering' : 'Sales'))).body.results[0].identityId);
    await t.post(`/identities/${ids[1]}/roles`, { role: 'break-glass' });
    await t.settle();
    // Stop the server but keep its data directory, as an operator would before running the CLI.
    await t.app.close();
    await t.engine.close();
    try {
      const edited = join(dir, 'birthright.yaml');
      writeFileSync(
        edited,
        [
          'version: 1',
          'defaultRoles: [employee-basic]',
          'rules:',
          '  - id: engineering-v2',
          '    when: { attribute: department, equals: Engineering }',
          '    roles: [github-developer, k8s-deployer]',
        ].join('\n'),
      );
      const r = cli(['reconcile-birthright'], { DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: edited, HR_WEBHOOK_SECRETS: HR_SECRET });
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ identities: 6, changed: 6 });

      const engine = await Engine.open({ config: loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: edited, KAFKA_BROKERS: '' }) });
      try {
        await engine.projections.runToHead();
        const eng = await engine.repository.load(ids[1]);
        const roles = eng.roles.map((g) => `${g.role}:${g.source.kind === 'birthright' ? g.source.ruleId : g.source.kind}`).sort();
        expect(roles).toEqual(['break-glass:manual', 'employee-basic:default', 'github-developer:engineering-v2', 'k8s-deployer:engineering-v2']);
        const sales = await engine.repository.load(ids[0]);
        expect(sales.roles.map((g) => g.role).sort()).toEqual(['employee-basic']);
        // Running it again changes nothing.
        await engine.close();
        const again = cli(['reconcile-birthright'], { DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: edited });
        expect(JSON.parse(again.stdout.trim().split('\n').pop()!)).toEqual({ identities: 6, changed: 0 });
      } finally {
        await engine.close().catch(() => undefined);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('projections:rebuild drops and rebuilds every read model to the same content', async () => {
    const t = await startTestApp();
    const dir = t.dir;
    for (let i = 0; i < 10; i++) await t.hr(hire(`r-${i}`, `R${i}`, 'Engineering'));
    await t.hr({ eventId: 'm-1', type: 'change', employeeId: 'R3', effectiveDate: '2026-01-06', attributes: { department: 'Finance' } });
    await t.settle();
    const dump = async (e: Engine) => ({
      identities: await e.readDb.all('SELECT * FROM identities ORDER BY identity_id'),
      roles: await e.readDb.all('SELECT * FROM role_assignments ORDER BY identity_id, role, source_key, granted_position'),
      timeline: await e.readDb.all('SELECT * FROM audit_timeline ORDER BY position'),
    });
    const before = await dump(t.engine);
    const events = await t.eventCount();
    await t.app.close();
    await t.engine.close();
    try {
      const r = cli(['projections:rebuild'], { DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: POLICY });
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.events).toBe(events);
      expect(out.rebuilt.every((p: { position: number }) => p.position === events)).toBe(true);
      expect(r.stderr).toContain('rebuilding');
      const engine = await Engine.open({ config: loadConfig({ DATA_DIR: dir, BIRTHRIGHT_POLICY_FILE: POLICY, KAFKA_BROKERS: '' }) });
      try {
        expect(await dump(engine)).toEqual(before);
      } finally {
        await engine.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
