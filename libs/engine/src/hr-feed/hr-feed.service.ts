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

/**
 * Applies HR facts through the identity write path. The HR event id is the idempotency key, so a
 * webhook retry or a Kafka redelivery appends nothing twice. Shared by the webhook and the Kafka consumer.
 */
/** Longest stretch (wall time, not the domain clock: this is scheduling) a batch runs without yielding. */
const YIELD_EVERY_MS = 10;

export class HrFeedService {
  constructor(private readonly commands: IdentityCommands) {}

  async applyAll(events: HrEventDto[], meta: HrSourceMetadata): Promise<HrEventResult[]> {
    const results: HrEventResult[] = [];
    let slice = performance.now();
    // In order: a batch may hire someone and then change them.
    for (const e of events) {
      // On SQLite every await settles at once, so a batch would otherwise be one unbroken chain of
      // microtasks: other requests, /health probes and a SIGTERM would wait for all of it. Yielding
      // every few milliseconds (not every event) keeps them responsive without splitting the
      // projections' work into one tiny batch per event.
      if (performance.now() - slice > YIELD_EVERY_MS) {
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
      results.push(await this.apply(e, meta));
    }
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
