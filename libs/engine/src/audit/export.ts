import { identityStream } from '@idlc/domain';
import type { EventStore, StoredEvent } from '@idlc/event-store';

export interface ExportOptions {
  /** One identity's stream; absent exports every stream. */
  identityId?: string;
  /** Inclusive bounds on recordedAt. */
  from?: Date;
  to?: Date;
  pageSize?: number;
}

/**
 * Every matching event in order, page by page: memory stays bounded by one page whatever the size
 * of the store, so exports can be streamed to a file or an HTTP response.
 */
export async function* exportEvents(store: EventStore, o: ExportOptions = {}, onPage?: (position: number) => void): AsyncGenerator<StoredEvent> {
  const pageSize = o.pageSize ?? 1000;
  const inRange = (e: StoredEvent) => (!o.from || e.recordedAt >= o.from) && (!o.to || e.recordedAt <= o.to);
  if (o.identityId) {
    const stream = identityStream(o.identityId);
    let from = 0;
    for (;;) {
      const page = await store.readStream(stream, { fromRevision: from, maxCount: pageSize, toRecordedAt: o.to });
      for (const e of page) if (inRange(e)) yield e;
      if (page.length) onPage?.(page[page.length - 1].position);
      if (page.length < pageSize) return;
      from = page[page.length - 1].revision + 1;
    }
  }
  let position = 0;
  for (;;) {
    // recordedAt is not guaranteed to follow position across processes, so the range is a filter, not a stop.
    const page = await store.readAll({ fromPosition: position, maxCount: pageSize });
    for (const e of page) if (inRange(e)) yield e;
    if (page.length) {
      position = page[page.length - 1].position;
      onPage?.(position);
    }
    if (page.length < pageSize) return;
  }
}

export type ExportFormat = 'jsonl' | 'csv';

export const CSV_COLUMNS = [
  'position',
  'streamId',
  'revision',
  'recordedAt',
  'type',
  'version',
  'source',
  'actor',
  'correlationId',
  'causationId',
  'prevHash',
  'hash',
  'data',
] as const;

/** One flat record per event, the same fields in both formats. */
export function exportRecord(e: StoredEvent): Record<(typeof CSV_COLUMNS)[number], unknown> {
  const m = e.metadata ?? {};
  return {
    position: e.position,
    streamId: e.streamId,
    revision: e.revision,
    recordedAt: e.recordedAt.toISOString(),
    type: e.type,
    version: e.version,
    source: m.source ?? null,
    actor: m.actor ?? null,
    correlationId: m.correlationId ?? null,
    causationId: m.causationId ?? null,
    prevHash: m.prevHash ?? null,
    hash: m.hash ?? null,
    data: e.data,
  };
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvHeader = () => CSV_COLUMNS.join(',') + '\r\n';

export function formatEvent(e: StoredEvent, format: ExportFormat): string {
  const r = exportRecord(e);
  if (format === 'jsonl') return JSON.stringify(r) + '\n';
  return CSV_COLUMNS.map((c) => csvField(r[c])).join(',') + '\r\n';
}

/** The whole export as text chunks (header first for CSV). */
export async function* exportLines(store: EventStore, format: ExportFormat, o: ExportOptions = {}, onPage?: (position: number) => void): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  for await (const e of exportEvents(store, o, onPage)) yield formatEvent(e, format);
}
