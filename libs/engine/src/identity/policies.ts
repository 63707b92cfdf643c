import { BirthrightEngine, LifecyclePolicy, PolicyError } from '@idlc/domain';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { EngineConfig } from '../config/config';
import type { PolicyProvider } from './identity-commands';

/** Reads and validates a birthright policy file (YAML or JSON); the error names the file and the bad rule. */
export function loadBirthrightPolicy(file: string): BirthrightEngine {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyError(`birthright policy ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new PolicyError(`birthright policy ${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  try {
    return BirthrightEngine.from(doc);
  } catch (e) {
    throw new PolicyError(`${file}: ${(e as Error).message}`);
  }
}

export function lifecycleFromConfig(c: EngineConfig): LifecyclePolicy {
  return {
    inactivityDays: c.inactivityDays,
    inactivityDaysByEmploymentType: c.inactivityDaysByEmploymentType,
    inactivityDaysByRole: c.inactivityDaysByRole,
    inactivityWarningDays: c.inactivityWarningDays,
    retentionDays: c.retentionDays,
    loginRecordIntervalSeconds: c.loginRecordIntervalSeconds,
  };
}

/** Holds the active policies; reload() swaps in an edited policy file (then reconcile). */
export class Policies implements PolicyProvider {
  private engine: BirthrightEngine;
  constructor(
    private readonly file: string,
    private readonly lifecyclePolicy: LifecyclePolicy,
  ) {
    this.engine = loadBirthrightPolicy(file);
  }
  birthright(): BirthrightEngine {
    return this.engine;
  }
  lifecycle(): LifecyclePolicy {
    return this.lifecyclePolicy;
  }
  reload(): void {
    this.engine = loadBirthrightPolicy(this.file);
  }
}
