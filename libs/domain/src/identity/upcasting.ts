import { EVENT_VERSIONS, IdentityEvent, isIdentityEventType } from './events';

/** Turns data of version v into version v + 1. */
export type Upcaster = (data: any) => any;

/**
 * Upcasters by event type and source version. Readers always see the current version, so folds
 * and projections handle one shape per type. Old events stay as they were written.
 */
export class UpcasterRegistry {
  private readonly steps = new Map<string, Map<number, Upcaster>>();

  register(type: string, fromVersion: number, step: Upcaster): this {
    let m = this.steps.get(type);
    if (!m) this.steps.set(type, (m = new Map()));
    m.set(fromVersion, step);
    return this;
  }

  upcast(type: string, version: number, data: unknown, target = isIdentityEventType(type) ? EVENT_VERSIONS[type] : version): { version: number; data: any } {
    let v = version;
    let d = data;
    while (v < target) {
      const step = this.steps.get(type)?.get(v);
      if (!step) throw new Error(`no upcaster for ${type} v${v} -> v${v + 1}`);
      d = step(d);
      v++;
    }
    if (v > target) throw new Error(`${type} v${v} is newer than this engine understands (v${target})`);
    return { version: v, data: d };
  }
}

/** The engine's registry. No published event has needed a new version yet. */
export const upcasters = new UpcasterRegistry();

export function toIdentityEvent(stored: { type: string; version: number; data: unknown }, registry = upcasters): IdentityEvent | null {
  if (!isIdentityEventType(stored.type)) return null;
  const { version, data } = registry.upcast(stored.type, stored.version, stored.data);
  return { type: stored.type, version, data } as IdentityEvent;
}
