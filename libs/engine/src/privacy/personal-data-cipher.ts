import { ERASED_VALUE, hasPersonalValue, IDENTITY_STREAM_PREFIX, identityIdOf, mapPersonalValues, mapStringLeaves } from '@idlc/domain';
import type { StoredEvent } from '@idlc/event-store';
import { gcmOpen, gcmSeal } from './aes-gcm';
import { DataKeyStatus, DataKeyStore, DataKeyUnavailableError } from './data-keys';

/**
 * An encrypted personal value, self-describing: `enc:v1:<key version>:<base64 iv|ciphertext|tag>`,
 * AES-256-GCM with a random 96-bit IV under the identity's data key, authenticated together with
 * the identity id and the value's path in the event data (so it cannot be moved to another
 * identity or field).
 */
export const ENCRYPTED_PREFIX = 'enc:v1:';

export const isEncryptedValue = (v: string): boolean => v.startsWith(ENCRYPTED_PREFIX);

const aad = (identityId: string, path: string) => Buffer.from(`${identityId}|${path}`, 'utf8');

export function encryptValue(key: Buffer, version: number, identityId: string, path: string, plain: string): string {
  return `${ENCRYPTED_PREFIX}${version}:${gcmSeal(key, aad(identityId, path), Buffer.from(plain, 'utf8')).toString('base64')}`;
}

/** Throws when the value is malformed, or was not encrypted under this key, identity and path. */
export function decryptValue(key: Buffer, version: number, identityId: string, path: string, value: string): string {
  const rest = value.slice(ENCRYPTED_PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon < 0 || Number(rest.slice(0, colon)) !== version) throw new Error(`value at ${path} is not under data key version ${version}`);
  const b = Buffer.from(rest.slice(colon + 1), 'base64');
  if (b.length < 28) throw new Error(`value at ${path} is truncated`);
  try {
    return gcmOpen(key, aad(identityId, path), b).toString('utf8');
  } catch {
    throw new Error(`value at ${path} does not authenticate (tampered, or moved from another identity or field)`);
  }
}

/** How a read treats a key it cannot use: a one-identity read fails; a read across identities keeps going. */
export type DecryptMode = 'strict' | 'lenient';

type Ev = { type: string; version: number; data: any };

/**
 * Encrypts personal values on the write path and decrypts them wherever stored events are read
 * (the engine wraps its event store with {@link DecryptingEventStore}, so folds, projections,
 * audit reads, exports and Kafka all see plaintext, or ERASED_VALUE once the key is destroyed).
 */
export class PersonalDataCipher {
  /** Called for each identity whose values stay encrypted in a lenient read (a key that is missing but not destroyed). */
  onError: (identityId: string, error: Error) => void = (id, e) => console.error(`personal data of identity ${id} left encrypted: ${e.message}`);
  /** Called when a read completes an erasure whose key destruction had not happened yet. */
  onErasureCompleted?: (identityId: string) => void;
  /** Values encrypted and decrypted by this process (tests prove the hot path does neither). */
  encrypted = 0;
  decrypted = 0;

  constructor(readonly keys: DataKeyStore) {}

  /**
   * The events with every personal value encrypted under the identity's data key (created on first
   * use). Events without personal values come back as they were, without touching any key.
   */
  async encryptEvents<E extends Ev>(identityId: string, events: E[]): Promise<E[]> {
    if (!events.some((e) => hasPersonalValue(e.type, e.data, (v) => !isEncryptedValue(v)))) return events;
    const { key, version } = await this.keys.keyForWrite(identityId);
    return events.map((e) => {
      const data = mapPersonalValues(e.type, e.data, (v, path) => {
        if (isEncryptedValue(v)) return v;
        this.encrypted++;
        return encryptValue(key, version, identityId, path, v);
      });
      return data === e.data ? e : { ...e, data };
    });
  }

  /**
   * Stored events as readers must see them: personal values decrypted; ERASED_VALUE for every
   * personal value of an erased identity (also plaintext ones written before encryption existed).
   * An IdentityErased whose key still exists (a crash between the append and the destruction)
   * has its key destroyed here, before anything of that identity is decrypted.
   */
  async decrypt(events: StoredEvent[], mode: DecryptMode): Promise<StoredEvent[]> {
    const need = new Set<string>();
    const encrypted = new Set<string>();
    const erased = new Set<string>();
    // Events holding ciphertext: under a key that is not destroyed, the others read as stored.
    const withCiphertext = new Set<StoredEvent>();
    for (const e of events) {
      if (!e.streamId.startsWith(IDENTITY_STREAM_PREFIX)) continue;
      const id = identityIdOf(e.streamId);
      if (e.type === 'IdentityErased') erased.add(id);
      if (hasEncrypted(e.data)) {
        encrypted.add(id);
        withCiphertext.add(e);
      } else if (hasPersonalValue(e.type, e.data)) need.add(id);
    }
    for (const id of [...erased, ...encrypted]) need.add(id);
    if (!need.size) return events;
    const statuses = await this.keys.statuses(need);
    // A key remembered as absent may have been created since (by another process): ask again before failing.
    const recheck = [...encrypted].filter((id) => statuses.get(id)!.state === 'missing' || statuses.get(id)!.state === 'unusable');
    for (const id of recheck) this.keys.evict(id);
    if (recheck.length) for (const [id, st] of await this.keys.statuses(recheck)) statuses.set(id, st);
    for (const id of erased) {
      if (statuses.get(id)!.state === 'destroyed') continue;
      await this.keys.destroy(id);
      statuses.set(id, await this.keys.status(id));
      this.onErasureCompleted?.(id);
    }
    const failed = new Set<string>();
    return events.map((e) => {
      if (!e.streamId.startsWith(IDENTITY_STREAM_PREFIX)) return e;
      const id = identityIdOf(e.streamId);
      const status = statuses.get(id);
      if (!status || (status.state !== 'destroyed' && !withCiphertext.has(e))) return e;
      try {
        const data = this.decryptData(e, id, status);
        return data === e.data ? e : { ...e, data };
      } catch (err) {
        const error = err instanceof DataKeyUnavailableError ? err : new DataKeyUnavailableError(id, (err as Error).message);
        if (mode === 'strict') throw error;
        if (!failed.has(id)) {
          failed.add(id);
          this.onError(id, error);
        }
        return e;
      }
    });
  }

  private decryptData(e: StoredEvent, id: string, status: DataKeyStatus): unknown {
    // Every encrypted string is found by its prefix, whatever the event's type or version: the
    // path it was bound to is where it is stored, so decryption needs no schema and runs before upcasting.
    const data = mapStringLeaves(e.data, (s, path) => {
      if (!isEncryptedValue(s)) return s;
      switch (status.state) {
        case 'active':
          this.decrypted++;
          return decryptValue(status.key, status.version, id, path, s);
        case 'destroyed':
          return ERASED_VALUE;
        case 'missing':
          throw new DataKeyUnavailableError(id, 'its data key is missing (not erased: was the key table lost or restored without it?)');
        case 'unusable':
          throw new DataKeyUnavailableError(id, status.reason);
      }
    });
    // Values written in plaintext before encryption existed cannot be shredded; they are redacted on read.
    return status.state === 'destroyed' ? mapPersonalValues(e.type, data, () => ERASED_VALUE) : data;
  }
}

function hasEncrypted(data: unknown): boolean {
  let found = false;
  mapStringLeaves(data, (s) => {
    if (!found && isEncryptedValue(s)) found = true;
    return s;
  });
  return found;
}
