import {
  BirthrightEngine,
  Clock,
  decideAll,
  evolve,
  identityStream,
  IdentityCommand,
  IdentityEvent,
  IdentityState,
  keyChanges,
  LifecyclePolicy,
  Rejection,
} from '@idlc/domain';
import {
  EventMetadata,
  EventStore,
  KeyAlreadyClaimedError,
  WrongExpectedVersionError,
} from '@idlc/event-store';
import { IdentityRepository } from './identity-repository';
import { chainEvents } from '../audit/hash-chain';
import { IdentityErasedError } from '../privacy/data-keys';
import type { PersonalDataCipher } from '../privacy/personal-data-cipher';

export interface CommandOptions {
  idempotencyKey?: string;
  metadata: EventMetadata;
  /** Bounded retries of optimistic-concurrency conflicts before a 409. */
  maxAttempts?: number;
  /**
   * The caller brought this identity's state up to the store's head just before (the deadline
   * scheduler's batch preload): decide on the cached state without reading the head again, and
   * leave the idempotency key to the append, which still answers a repeated key as a duplicate.
   * Saves two round trips per command on PostgreSQL.
   */
  preloaded?: boolean;
}

export interface CommandOutcome {
  identityId: string;
  duplicate: boolean;
  /** Events appended by this call (empty for a no-op or a duplicate). */
  events: { type: string; position: number; revision: number }[];
  state: IdentityState;
  rejection?: Rejection;
}

/** Raised after the bounded retries of a hot identity are used up. */
export class ConcurrencyConflictError extends Error {
  constructor(readonly identityId: string, attempts: number) {
    super(`identity ${identityId} kept changing concurrently; gave up after ${attempts} attempts`);
    this.name = 'ConcurrencyConflictError';
  }
}

/** A unique key (employee id, IdP subject, SCIM externalId or userName) is owned by another identity. */
export class DuplicateKeyError extends Error {
  constructor(readonly key: string, readonly ownerIdentityId: string) {
    super(`key ${key} already belongs to identity ${ownerIdentityId}`);
    this.name = 'DuplicateKeyError';
  }
}

export interface PolicyProvider {
  birthright(): BirthrightEngine;
  lifecycle(): LifecyclePolicy;
}

/**
 * The one write path for identities: load the aggregate (cached), decide purely, append with the
 * expected revision, key claims and the caller's idempotency key in one atomic append.
 */
export class IdentityCommands {
  constructor(
    private readonly store: EventStore,
    readonly repository: IdentityRepository,
    private readonly policies: PolicyProvider,
    private readonly clock: Clock,
    /** Encrypts personal values before they are hashed and stored; absent, they are stored as given. */
    private readonly personalData?: PersonalDataCipher,
  ) {}

  async execute(identityId: string, commands: IdentityCommand[], options: CommandOptions): Promise<CommandOutcome> {
    const stream = identityStream(identityId);
    if (options.idempotencyKey && !options.preloaded) {
      const seen = await this.store.lookupIdempotencyKey(options.idempotencyKey);
      if (seen) return this.duplicateOutcome(seen.streamId.slice('identity-'.length));
    }
    const maxAttempts = options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const state =
        attempt > 1
          ? await this.repository.refresh(identityId)
          : options.preloaded
            ? await this.repository.load(identityId)
            : await this.repository.loadCurrent(identityId);
      const now = this.clock.now();
      const decision = decideAll(state, commands, {
        now,
        birthright: this.policies.birthright(),
        lifecycle: this.policies.lifecycle(),
      });
      // A refusal with nothing to record leaves no trace, not even its idempotency key: a retry (or a
      // redelivery after a crash) is decided again and gets the same refusal, not "duplicate".
      if (decision.events.length === 0 && (!options.idempotencyKey || decision.rejection)) {
        return { identityId, duplicate: false, events: [], state, rejection: decision.rejection };
      }
      const { claims, releases } = keyChanges(decision.events);
      let toStore = decision.events;
      try {
        // Encrypted before hashing: the chain covers the ciphertext, so it still verifies once the key is destroyed.
        if (this.personalData) toStore = await this.personalData.encryptEvents(identityId, decision.events);
      } catch (e) {
        // Erased by another process since this state was cached: decided again on a fresh state, it is refused.
        if (!(e instanceof IdentityErasedError) || attempt >= maxAttempts) throw e;
        this.repository.forget(identityId);
        continue;
      }
      // Each event links to the one before it (tamper-evident history); the head hash comes from the cache.
      const chained = chainEvents(stream, state.revision + 1, await this.repository.lastHash(state), toStore, options.metadata);
      try {
        const result = await this.store.append(
          stream,
          chained.events,
          state.revision === -1 ? 'no_stream' : state.revision,
          { idempotencyKey: options.idempotencyKey, claims, releases },
        );
        if (result.duplicate) return this.duplicateOutcome(result.streamId.slice('identity-'.length));
        const at = (result.recordedAt ?? now).toISOString();
        let after = state;
        decision.events.forEach((e, i) => (after = evolve(after, e, at, state.revision + 1 + i)));
        if (decision.events.length) this.repository.remember(state, after, chained.lastHash);
        return {
          identityId,
          duplicate: false,
          events: decision.events.map((e, i) => ({ type: e.type, position: result.positions[i], revision: state.revision + 1 + i })),
          state: after,
          rejection: decision.rejection,
        };
      } catch (e) {
        if (e instanceof WrongExpectedVersionError) {
          this.repository.forget(identityId);
          if (attempt >= maxAttempts) throw new ConcurrencyConflictError(identityId, attempt);
          continue;
        }
        if (e instanceof KeyAlreadyClaimedError) throw new DuplicateKeyError(e.key, e.ownerStreamId.slice('identity-'.length));
        throw e;
      }
    }
  }

  private async duplicateOutcome(identityId: string): Promise<CommandOutcome> {
    return { identityId, duplicate: true, events: [], state: await this.repository.load(identityId) };
  }

  /** The identity an idempotency key was applied to, if it was. */
  async lookupIdempotency(key: string): Promise<string | null> {
    const r = await this.store.lookupIdempotencyKey(key);
    return r ? r.streamId.slice('identity-'.length) : null;
  }

  /** Which identity owns an external key. */
  async findByKey(key: string): Promise<string | null> {
    const stream = await this.store.lookupKey(key);
    return stream ? stream.slice('identity-'.length) : null;
  }
}

export type { IdentityEvent };
