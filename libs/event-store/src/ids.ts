import { v7 } from 'uuid';

/**
 * New event and identity ids: UUIDv7 (RFC 9562), whose leading 48 bits are the creation time in
 * milliseconds. Ids made in order land at the right-hand edge of the unique indexes that hold them
 * (events.id, events' stream ids, read-model keys) instead of at random pages, so an append touches
 * pages that are already in the cache.
 */
export const newId = (): string => v7();
