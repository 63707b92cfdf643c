import type { ExpectedRevision } from './port';

/** The stream was not at the expected revision; nothing was written. */
export class WrongExpectedVersionError extends Error {
  readonly code = 'WRONG_EXPECTED_VERSION';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: number,
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${actual}`);
    this.name = 'WrongExpectedVersionError';
  }
}

/** A unique key is already owned by another stream; nothing was written. */
export class KeyAlreadyClaimedError extends Error {
  readonly code = 'KEY_ALREADY_CLAIMED';
  constructor(
    readonly key: string,
    readonly ownerStreamId: string,
  ) {
    super(`key ${key} is already claimed by ${ownerStreamId}`);
    this.name = 'KeyAlreadyClaimedError';
  }
}

/** The store could not be reached or failed; the append may be retried. */
export class EventStoreUnavailableError extends Error {
  readonly code = 'EVENT_STORE_UNAVAILABLE';
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = 'EventStoreUnavailableError';
  }
}

export function checkExpected(streamId: string, expected: ExpectedRevision, actual: number): void {
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && actual === -1) ||
    (expected === 'stream_exists' && actual >= 0) ||
    (typeof expected === 'number' && expected === actual);
  if (!ok) throw new WrongExpectedVersionError(streamId, expected, actual);
}
