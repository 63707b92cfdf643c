import { newId } from './ids';
import type { AppendResult, EventToAppend, StoredEvent } from './port';

export interface EventRow {
  position: number;
  id: string;
  stream_id: string;
  revision: number;
  type: string;
  version: number;
  data: string;
  metadata: string;
  recorded_at: number;
}

export function rowToEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    position: Number(r.position),
    streamId: r.stream_id,
    revision: Number(r.revision),
    type: r.type,
    version: Number(r.version),
    data: JSON.parse(r.data),
    metadata: JSON.parse(r.metadata),
    recordedAt: new Date(Number(r.recorded_at)),
  };
}

export interface PreparedEvent {
  id: string;
  type: string;
  version: number;
  data: string;
  metadata: string;
}

export function prepareEvents(events: EventToAppend[]): PreparedEvent[] {
  return events.map((e) => {
    if (!e.type || typeof e.type !== 'string') throw new TypeError('event type is required');
    if (!Number.isInteger(e.version) || e.version < 1) throw new TypeError(`event ${e.type}: version must be an integer >= 1`);
    return {
      id: e.id ?? newId(),
      type: e.type,
      version: e.version,
      data: JSON.stringify(e.data ?? {}),
      metadata: JSON.stringify(e.metadata ?? {}),
    };
  });
}

export function encodeResult(r: AppendResult): string {
  return JSON.stringify({ s: r.streamId, r: r.nextExpectedRevision, p: r.positions });
}

export function decodeResult(text: string): AppendResult {
  const o = JSON.parse(text);
  return { streamId: o.s, nextExpectedRevision: o.r, positions: o.p, duplicate: true };
  // recordedAt is left out on purpose: a duplicate appended nothing now.
}
