import { performance } from 'node:perf_hooks';
import { AttributeName, Attributes, hrKey, IdentityCommand, keyString } from '@idlc/domain';
import { newId } from '@idlc/event-store';
import { FieldError, validateDto } from '../common/validation';
import { DuplicateKeyError, IdentityCommands } from '../identity/identity-commands';
import { HrBatchDto, HrEventDto } from './hr-event.dto';

export interface HrEventResult {
  eventId: string;
  status: 'applied' | 'unchanged' | 'duplicate' | 'rejected';
  identityId?: string;
  appended: number;
  error?: { code: string; message: string };
}

export interface HrSourceMetadata {
  source: 'hr-webhook' | 'hr-kafka';
  actor: string;
  correlationId: string;
}

/** Parses an HR payload: one event or `{ events: [...] }`. Returns the events or every bad field. */
export function parseHrPayload(body: unknown): { ok: true; events: HrEventDto[] } | { ok: false; errors: FieldError[] } {
  if (body && typeof body === 'object' && !Array.isArray(body) && 'events' in body) {
    const r = validateDto(HrBatchDto, body);
    return r.ok ? { ok: true, events: r.value.events } : r;
  }
  const r = validateDto(HrEventDto, body);
  return r.ok ? { ok: true, events: [r.value] } : r;
}

/** 'YYYY-MM-DD' is midnight UTC; a date-time keeps its instant. */
export function effectiveInstant(s: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00.000Z` : new Date(s).toISOString();
}

function attributesOf(dto: HrEventDto): Partial<Record<AttributeName, string | null>> {
  const out: Partial<Record<AttributeName, string | null>> = {};
  for (const [k, v] of Object.entries(dto.attributes ?? {})) if (v !== undefined) out[k as AttributeName] = v as string | null;
  return out;
}

const definedOnly = (a: Partial<Record<AttributeName, string | null>>): Attributes =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== null && v !== undefined)) as Attributes;

/** Longest stretch (wall time, not the domain clock: this is scheduling) a batch runs without yielding. */
const YIELD_EVERY_MS = 10;

/** Employees whose events are applied at once: their appends then share the writer's group commits. */
const EMPLOYEES_IN_FLIGHT = 32;

/**
 * The batch's event indices in chains that must run in order: one employee's events (a hire, then
 * a change) and events repeating an event id (the first one applies, the rest answer "duplicate").
 * Chains share nothing, so they can run side by side.
 */
export function orderedChains(events: readonly Pick<HrEventDto, 'employeeId' | 'eventId'>[]): number[][] {
  const parent = events.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const firstOf = new Map<string, number>();
  events.forEach((e, i) => {
    for (const key of [`employee:${e.employeeId}`, `event:${e.eventId}`]) {
      const j = firstOf.get(key);
      if (j === undefined) firstOf.set(key, i);
      else parent[root(i)] = root(j);
    }
  });
  const chains = new Map<number, number[]>();
  events.forEach((_, i) => {
    const r = root(i);
    let c = chains.get(r);
    if (!c) chains.set(r, (c = []));
    c.push(i);
  });
  return [...chains.values()];
}

/**
 * Applies HR facts through the identity write path. The HR event id is the idempotency key, so a
 * webhook retry or a Kafka redelivery appends nothing twice. Shared by the webhook and the Kafka consumer.
 */
export class HrFeedService {
  private sliceStart = performance.now();
  private pause: Promise<void> | undefined;

  constructor(private readonly commands: IdentityCommands) {}

  /**
   * On SQLite every await settles at once, so a batch would otherwise be one unbroken chain of
   * microtasks: other requests, /health probes and a SIGTERM would wait for all of it. Every few
   * milliseconds (not every event, which would split the projections' work into tiny batches) every
   * runner of every batch in flight waits for one turn of the event loop, together: one pausing
   * alone would leave the others' microtasks in the way. Undefined when there is no pause.
   */
  private breathe(): Promise<void> | undefined {
    if (!this.pause && performance.now() - this.sliceStart > YIELD_EVERY_MS) {
      this.pause = new Promise<void>((r) => setImmediate(r)).then(() => {
        this.pause = undefined;
        this.sliceStart = performance.now();
      });
    }
    return this.pause;
  }

  /**
   * Results in the batch's order. One employee's events apply in order; different employees' run
   * side by side (up to EMPLOYEES_IN_FLIGHT), so a 1,000-hire batch is a few commits, not a thousand.
   * An unexpected error stops taking new work and is thrown once what had started has finished;
   * whatever was applied stays applied, and a retry of the batch answers it "duplicate".
   */
  async applyAll(events: HrEventDto[], meta: HrSourceMetadata): Promise<HrEventResult[]> {
    const results = new Array<HrEventResult>(events.length);
    const chains = orderedChains(events);
    let next = 0;
    let failure: { error: unknown } | undefined;
    const run = async (): Promise<void> => {
      while (!failure && next < chains.length) {
        const chain = chains[next++];
        for (const i of chain) {
          const paused = this.breathe();
          if (paused) await paused;
          if (failure) return;
          try {
            results[i] = await this.apply(events[i], meta);
          } catch (error) {
            failure ??= { error };
            return;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EMPLOYEES_IN_FLIGHT, chains.length) }, run));
    if (failure) throw failure.error;
    return results;
  }

  async apply(e: HrEventDto, meta: HrSourceMetadata, attempt = 1): Promise<HrEventResult> {
    const effectiveAt = effectiveInstant(e.effectiveDate);
    const existing = await this.commands.findByKey(keyString(hrKey(e.employeeId)));
    let identityId = existing;
    let command: IdentityCommand;
    const attributes = attributesOf(e);
    switch (e.type) {
      case 'hire':
        identityId ??= newId();
        command = { kind: 'Hire', employeeId: e.employeeId, effectiveAt, attributes: definedOnly(attributes), hrEventId: e.eventId };
        break;
      case 'change':
        command = { kind: 'ChangeAttributes', attributes, effectiveAt, source: 'hr' };
        break;
      case 'terminate':
        command = { kind: 'Terminate', effectiveAt, reason: e.reason ?? 'unspecified', hrEventId: e.eventId };
        break;
      case 'rehire':
        command = { kind: 'Rehire', employeeId: e.employeeId, effectiveAt, attributes: e.attributes ? definedOnly(attributes) : undefined, hrEventId: e.eventId };
        break;
    }
    const idempotencyKey = `hr:${e.eventId}`;
    if (!identityId) {
      // A retry of an event that was applied must still answer "duplicate", even for unknown employees.
      const seen = await this.commands.lookupIdempotency(idempotencyKey);
      if (seen) return { eventId: e.eventId, status: 'duplicate', identityId: seen, appended: 0 };
      return { eventId: e.eventId, status: 'rejected', appended: 0, error: { code: 'unknown_employee', message: `no identity for employee ${e.employeeId}` } };
    }
    try {
      const out = await this.commands.execute(identityId, [command], {
        idempotencyKey,
        metadata: { source: meta.source, actor: meta.actor, correlationId: meta.correlationId, causationId: idempotencyKey, hrEventId: e.eventId },
      });
      if (out.duplicate) return { eventId: e.eventId, status: 'duplicate', identityId: out.identityId, appended: 0 };
      if (out.rejection) {
        return { eventId: e.eventId, status: 'rejected', identityId, appended: out.events.length, error: { code: out.rejection.code, message: out.rejection.message } };
      }
      return { eventId: e.eventId, status: out.events.length ? 'applied' : 'unchanged', identityId, appended: out.events.length };
    } catch (err) {
      // Two hires of one new employee raced: the loser retries against the winner's identity.
      if (err instanceof DuplicateKeyError && attempt < 3) return this.apply(e, meta, attempt + 1);
      throw err;
    }
  }
}
