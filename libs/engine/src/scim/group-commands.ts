import {
  Clock,
  decideGroupAll,
  evolveGroup,
  GroupCommand,
  GroupDecision,
  GroupEvent,
  groupStream,
  GroupState,
  initialGroupState,
  toGroupEvent,
} from '@idlc/domain';
import { EventMetadata, EventStore, StoredEvent, WrongExpectedVersionError } from '@idlc/event-store';
import { Lru } from '../common/lru';
import { ConcurrencyConflictError } from '../identity/identity-commands';
import { chainEvents, GENESIS_HASH, headLinkHash } from '../audit/hash-chain';

export interface GroupOutcome {
  groupId: string;
  /** Appended events with their revision (empty for a no-op or a refusal). */
  events: { event: GroupEvent; revision: number; position: number }[];
  state: GroupState;
  rejection?: GroupDecision['rejection'];
}

function fold(state: GroupState, events: StoredEvent[]): GroupState {
  let s = state;
  for (const e of events) {
    const ev = toGroupEvent(e);
    s = ev ? evolveGroup(s, ev, e.recordedAt.toISOString(), e.revision) : { ...s, revision: e.revision };
  }
  return s;
}

/**
 * The write path of SCIM groups, shaped like IdentityCommands: load (cached), decide purely, append
 * with the expected revision; a concurrent change is retried on a refreshed state.
 */
export class GroupCommands {
  private readonly cache = new Lru<string, GroupState>(10_000);
  /** Hash of each cached group's last event (head of its hash chain), beside the state. */
  private readonly hashes = new Lru<string, { revision: number; hash: string }>(10_000);

  constructor(
    private readonly store: EventStore,
    private readonly clock: Clock,
  ) {}

  async load(groupId: string): Promise<GroupState> {
    const cached = this.cache.get(groupId);
    const base = cached ?? initialGroupState(groupId);
    const tail = await this.store.readStream(groupStream(groupId), { fromRevision: base.revision + 1 });
    const s = fold(base, tail);
    if (s.revision >= 0) this.cache.set(groupId, s);
    const last = tail[tail.length - 1];
    if (last && typeof last.metadata?.hash === 'string') this.hashes.set(groupId, { revision: last.revision, hash: last.metadata.hash });
    return s;
  }

  private async lastHash(state: GroupState): Promise<string> {
    if (state.revision < 0) return GENESIS_HASH;
    const known = this.hashes.get(state.groupId);
    if (known && known.revision === state.revision) return known.hash;
    return headLinkHash(this.store, groupStream(state.groupId), state.revision);
  }

  async execute(groupId: string, commands: GroupCommand[], metadata: EventMetadata, maxAttempts = 5): Promise<GroupOutcome> {
    for (let attempt = 1; ; attempt++) {
      const state = await this.load(groupId);
      const now = this.clock.now();
      const decision = decideGroupAll(state, commands, now.toISOString());
      if (decision.rejection || decision.events.length === 0) return { groupId, events: [], state, rejection: decision.rejection };
      const chained = chainEvents(groupStream(groupId), state.revision + 1, await this.lastHash(state), decision.events, metadata);
      try {
        const result = await this.store.append(
          groupStream(groupId),
          chained.events,
          state.revision === -1 ? 'no_stream' : state.revision,
        );
        const at = (result.recordedAt ?? now).toISOString();
        let after = state;
        const events = decision.events.map((e, i) => {
          after = evolveGroup(after, e, at, state.revision + 1 + i);
          return { event: e, revision: state.revision + 1 + i, position: result.positions[i] };
        });
        this.cache.set(groupId, after);
        this.hashes.set(groupId, { revision: after.revision, hash: chained.lastHash });
        return { groupId, events, state: after };
      } catch (e) {
        if (e instanceof WrongExpectedVersionError) {
          this.cache.delete(groupId);
          this.hashes.delete(groupId);
          if (attempt >= maxAttempts) throw new ConcurrencyConflictError(groupId, attempt);
          continue;
        }
        throw e;
      }
    }
  }
}
