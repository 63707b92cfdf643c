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
  AppendRequest,
  AppendResult,
  EventMetadata,
  EventStore,
  KeyAlreadyClaimedError,
  WrongExpectedVersionError,
} from '@idlc/event-store';
import { settleEach } from '@idlc/sql';
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

/** A decision with events to append (or an idempotency key to record), and what its outcome needs. */
interface Appending {
  identityId: string;
  state: IdentityState;
  now: Date;
  events: IdentityEvent[];
  rejection?: Rejection;
  lastHash: string;
  request: AppendRequest;
}

type Prepared = Appending | { outcome: CommandOutcome };

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
      let step: Prepared;
      try {
        step = await this.prepare(identityId, state, commands, options);
      } catch (e) {
        // Erased by another process since this state was cached: decided again on a fresh state, it is refused.
        if (!(e instanceof IdentityErasedError) || attempt >= maxAttempts) throw e;
        this.repository.forget(identityId);
        continue;
      }
      if ('outcome' in step) return step.outcome;
      try {
        const r = step.request;
        return await this.completed(step, await this.store.append(r.streamId, r.events, r.expected, r.options));
      } catch (e) {
        if (e instanceof WrongExpectedVersionError) {
          this.repository.forget(identityId);
          if (attempt >= maxAttempts) throw new ConcurrencyConflictError(identityId, attempt);
          continue;
        }
        throw this.translate(e);
      }
    }
  }

  /**
   * Several identities' commands at once, each decided on its cached state and all appended by one
   * `appendMany` (on PostgreSQL one transaction for the batch instead of one per identity). For the
   * deadline scheduler after its batch preload, so the options' `preloaded` is implied. An identity
   * another writer moved meanwhile (its append conflicts) or erased goes through `execute` again,
   * which reads its head and retries as usual. Results keep the order of `items`; identities must
   * not repeat.
   */
  async executeMany(items: { identityId: string; commands: IdentityCommand[]; options: CommandOptions }[]): Promise<PromiseSettledResult<CommandOutcome>[]> {
    const out = new Array<PromiseSettledResult<CommandOutcome>>(items.length);
    const again: number[] = [];
    const pending: { index: number; step: Appending }[] = [];
    await Promise.all(
      items.map(async (item, index) => {
        try {
          const step = await this.prepare(item.identityId, await this.repository.load(item.identityId), item.commands, item.options);
          if ('outcome' in step) out[index] = { status: 'fulfilled', value: step.outcome };
          else pending.push({ index, step });
        } catch (e) {
          if (e instanceof IdentityErasedError) {
            this.repository.forget(item.identityId);
            again.push(index);
          } else out[index] = { status: 'rejected', reason: e };
        }
      }),
    );
    pending.sort((a, b) => a.index - b.index);
    let appended: PromiseSettledResult<AppendResult>[];
    try {
      appended = await this.store.appendMany(pending.map((p) => p.step.request));
    } catch (reason) {
      // The store refused the batch as a whole (unavailable: on PostgreSQL nothing of it was stored): each command failed.
      appended = pending.map(() => ({ status: 'rejected', reason }));
    }
    for (const [k, { index, step }] of pending.entries()) {
      const r = appended[k];
      if (r.status === 'fulfilled') {
        out[index] = await this.completed(step, r.value).then(
          (value) => ({ status: 'fulfilled', value }),
          (reason) => ({ status: 'rejected', reason }),
        );
      } else if (r.reason instanceof WrongExpectedVersionError) {
        this.repository.forget(step.identityId);
        again.push(index);
      } else out[index] = { status: 'rejected', reason: this.translate(r.reason) };
    }
    const retried = await settleEach(again, (index) => {
      const { identityId, commands, options } = items[index];
      return this.execute(identityId, commands, { ...options, preloaded: false });
    });
    again.forEach((index, k) => (out[index] = retried[k]));
    return out;
  }

  /**
   * Decides on `state` and builds the append: the outcome itself when there is nothing to append.
   * Throws IdentityErasedError when the identity's data key is gone (the state was stale).
   */
  private async prepare(identityId: string, state: IdentityState, commands: IdentityCommand[], options: CommandOptions): Promise<Prepared> {
    const now = this.clock.now();
    const decision = decideAll(state, commands, {
      now,
      birthright: this.policies.birthright(),
      lifecycle: this.policies.lifecycle(),
    });
    // A refusal with nothing to record leaves no trace, not even its idempotency key: a retry (or a
    // redelivery after a crash) is decided again and gets the same refusal, not "duplicate".
    if (decision.events.length === 0 && (!options.idempotencyKey || decision.rejection)) {
      return { outcome: { identityId, duplicate: false, events: [], state, rejection: decision.rejection } };
    }
    const { claims, releases } = keyChanges(decision.events);
    // Encrypted before hashing: the chain covers the ciphertext, so it still verifies once the key is destroyed.
    const toStore = this.personalData ? await this.personalData.encryptEvents(identityId, decision.events) : decision.events;
    const stream = identityStream(identityId);
    // Each event links to the one before it (tamper-evident history); the head hash comes from the cache.
    const chained = chainEvents(stream, state.revision + 1, await this.repository.lastHash(state), toStore, options.metadata);
    return {
      identityId,
      state,
      now,
      events: decision.events,
      rejection: decision.rejection,
      lastHash: chained.lastHash,
      request: {
        streamId: stream,
        events: chained.events,
        expected: state.revision === -1 ? 'no_stream' : state.revision,
        options: { idempotencyKey: options.idempotencyKey, claims, releases },
      },
    };
  }

  /** The outcome of a stored append; the cache moves on to the state it left. */
  private async completed(step: Appending, result: AppendResult): Promise<CommandOutcome> {
    if (result.duplicate) return this.duplicateOutcome(result.streamId.slice('identity-'.length));
    const { identityId, state, events } = step;
    const at = (result.recordedAt ?? step.now).toISOString();
    let after = state;
    events.forEach((e, i) => (after = evolve(after, e, at, state.revision + 1 + i)));
    if (events.length) this.repository.remember(state, after, step.lastHash);
    return {
      identityId,
      duplicate: false,
      events: events.map((e, i) => ({ type: e.type, position: result.positions[i], revision: state.revision + 1 + i })),
      state: after,
      rejection: step.rejection,
    };
  }

  private translate(e: unknown): unknown {
    return e instanceof KeyAlreadyClaimedError ? new DuplicateKeyError(e.key, e.ownerStreamId.slice('identity-'.length)) : e;
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
