import type { BatchHandler, StoredEvent, Subscription } from './port';

export interface CatchUpSource {
  read(fromPosition: number, maxCount: number): Promise<StoredEvent[]>;
  head(): Promise<number>;
  /** Resolves when new events may be visible, or after `ms` at the latest. */
  waitForChange(ms: number): Promise<void>;
}

/**
 * Catch-up then live delivery shared by the SQL adapters: read a batch after the checkpoint, hand it
 * to the handler, advance; when nothing is left, sleep until the store signals a commit. A failing
 * handler gets the same batch again after a backoff, so no event is ever skipped.
 */
export class CatchUpSubscription implements Subscription {
  private pos: number;
  private stopped = false;
  private readonly done: Promise<void>;
  private waiters: { target: number; resolve: () => void; seq: number }[] = [];
  /** Counts reads started; an empty read only vouches for waiters registered before it began. */
  private readSeq = 0;
  private wakeStop!: () => void;
  private readonly stopSignal = new Promise<void>((r) => (this.wakeStop = r));

  constructor(
    private readonly source: CatchUpSource,
    private readonly handler: BatchHandler,
    fromPosition: number,
    private readonly batchSize: number,
    private readonly onError?: (error: unknown, attempt: number) => void,
    private readonly idleWaitMs = 1000,
    /** After waking from idle, wait this long so a burst of appends is handled as one batch. */
    private readonly coalesceMs = 5,
  ) {
    this.pos = fromPosition;
    this.done = this.loop();
  }

  get position(): number {
    return this.pos;
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      let batch: StoredEvent[];
      const seq = ++this.readSeq;
      try {
        batch = await this.source.read(this.pos, this.batchSize);
      } catch (e) {
        attempt++;
        this.onError?.(e, attempt);
        await Promise.race([sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7))), this.stopSignal]);
        continue;
      }
      if (batch.length === 0) {
        this.settleWaiters(seq);
        await Promise.race([this.source.waitForChange(this.idleWaitMs), this.stopSignal]);
        if (this.coalesceMs > 0 && !this.stopped) await Promise.race([sleep(this.coalesceMs), this.stopSignal]);
        continue;
      }
      try {
        await this.handler(batch);
        attempt = 0;
        this.pos = batch[batch.length - 1].position;
        this.settleWaiters();
      } catch (e) {
        attempt++;
        this.onError?.(e, attempt);
        if (this.stopped) break;
        await Promise.race([sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7))), this.stopSignal]);
      }
    }
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private settleWaiters(emptyReadSeq?: number): void {
    this.waiters = this.waiters.filter((w) => {
      // An empty read means every event visible when it began was handled: the targets of waiters
      // registered before it are met, even when the newest events belong to streams this
      // subscription filters out. A waiter registered during that read may target a later commit.
      if ((emptyReadSeq !== undefined && w.seq < emptyReadSeq) || this.pos >= w.target) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  async caughtUp(): Promise<void> {
    const target = await this.source.head();
    if (this.pos >= target || this.stopped) return;
    await new Promise<void>((resolve) => this.waiters.push({ target, resolve, seq: this.readSeq }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeStop();
    await this.done;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
