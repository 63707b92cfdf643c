import { systemClock, type Clock, type ReplayCache } from './types';

/**
 * In-process {@link ReplayCache}: remembers (issuer, credentialId) until `expiresAt` (by the injected
 * clock), then forgets it. Fails closed: when `maxEntries` unexpired entries are held, `claim` throws
 * rather than evicting entries that could still be replayed.
 */
export class InMemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>();
  private claimsSinceSweep = 0;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly maxEntries = 100_000,
  ) {}

  async claim(issuer: string, credentialId: string, expiresAt: Date): Promise<boolean> {
    const now = this.clock.now().getTime();
    const key = JSON.stringify([issuer, credentialId]);
    const existing = this.entries.get(key);
    if (existing !== undefined && existing > now) return false;

    if (++this.claimsSinceSweep >= 1024 || this.entries.size >= this.maxEntries) this.sweep(now);
    if (this.entries.size >= this.maxEntries) {
      throw new Error(`replay cache full (${this.maxEntries} unexpired entries)`);
    }
    this.entries.set(key, expiresAt.getTime());
    return true;
  }

  /** Number of entries held (expired ones may linger until the next sweep). */
  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    this.claimsSinceSweep = 0;
    for (const [key, exp] of this.entries) {
      if (exp <= now) this.entries.delete(key);
    }
  }
}
