import type { EventMetadata } from '@idlc/event-store';
import type { CommandOutcome, IdentityCommands } from '../identity/identity-commands';
import type { IdentityRepository } from '../identity/identity-repository';
import type { DataKeyStore } from './data-keys';

export interface EraseOptions {
  reason: string;
  /** Who asked (recorded in IdentityErased and as the events' actor). */
  requestedBy: string;
  metadata?: EventMetadata;
}

/**
 * Right to be forgotten in an append-only log: IdentityErased is appended through the normal write
 * path (which refuses an account that is still enabled), then the identity's data key is destroyed,
 * so every personal value in its history reads as ERASED_VALUE while types, times, roles and the
 * hash chain stay intact. Read models scrub themselves when they fold IdentityErased.
 *
 * Safe to repeat, and completed by any later read if the process dies between the append and the
 * destruction (see PersonalDataCipher.decrypt).
 */
export class IdentityErasure {
  constructor(
    private readonly commands: IdentityCommands,
    private readonly repository: IdentityRepository,
    private readonly keys: DataKeyStore,
  ) {}

  async erase(identityId: string, o: EraseOptions): Promise<CommandOutcome> {
    const out = await this.commands.execute(identityId, [{ kind: 'EraseIdentity', reason: o.reason, requestedBy: o.requestedBy }], {
      metadata: { source: 'admin', actor: o.requestedBy, action: 'erase', ...o.metadata },
    });
    if (out.rejection || !out.state.erasedAt) return out;
    await this.complete(identityId);
    return { ...out, state: await this.repository.load(identityId) };
  }

  /**
   * Destroys the data key, and replaces the cached aggregate and its snapshot (which hold
   * plaintext) with the erased state. Idempotent.
   */
  async complete(identityId: string): Promise<void> {
    await this.keys.destroy(identityId);
    this.repository.forget(identityId);
    const state = await this.repository.refresh(identityId);
    await this.repository.saveSnapshot(state);
  }
}
