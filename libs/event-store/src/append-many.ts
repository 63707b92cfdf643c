import { settleEach } from '@idlc/sql';
import type { AppendRequest, AppendResult } from './port';

/** Stream ids and idempotency keys must not repeat within one appendMany: each request stands alone. */
export function checkAppendMany(requests: readonly AppendRequest[]): void {
  const streams = new Set<string>();
  const keys = new Set<string>();
  for (const r of requests) {
    if (!r.streamId) throw new TypeError('streamId is required');
    if (streams.has(r.streamId)) throw new TypeError(`appendMany: stream ${r.streamId} appears twice`);
    streams.add(r.streamId);
    const key = r.options?.idempotencyKey;
    if (key === undefined) continue;
    if (keys.has(key)) throw new TypeError(`appendMany: idempotency key ${key} appears twice`);
    keys.add(key);
  }
}

/**
 * appendMany for a backend without multi-stream transactions: the requests as separate appends,
 * at most `limit` in flight, each settling on its own.
 */
export async function appendSideBySide(
  requests: readonly AppendRequest[],
  append: (r: AppendRequest) => Promise<AppendResult>,
  limit = Infinity,
): Promise<PromiseSettledResult<AppendResult>[]> {
  checkAppendMany(requests);
  return settleEach(requests, append, limit);
}
