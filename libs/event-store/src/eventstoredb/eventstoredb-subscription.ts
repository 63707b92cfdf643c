import type { AllStreamResolvedEvent, AllStreamSubscription } from '@eventstore/db-client';
import type { BatchHandler, StoredEvent, Subscription } from '../port';
import { sleep } from '../subscription';

/** What a subscription needs from the store: kept narrow so the delivery logic stays readable. */
export interface EventStoreDbSubscriptionSource {
  /** A native `$all` subscription delivering everything after `position` (0: from the start). */
  open(position: number): AllStreamSubscription;
  /** The engine event, or null when the event belongs to a stream this subscription does not see. */
  convert(resolved: AllStreamResolvedEvent): StoredEvent | null;
  /** Position of the newest event this subscription would deliver (0 when there is none). */
  head(): Promise<number>;
}

const backoff = (attempt: number) => Math.min(5000, 50 * 2 ** Math.min(attempt, 7));

/**
 * Catch-up then live delivery over EventStoreDB's own `$all` subscription (the server switches from
 * reading to pushing by itself). Events are taken from the stream in paused mode, at most `batchSize`
 * at a time, and the handler is awaited before the next batch is read, so backpressure reaches the
 * server through gRPC flow control. A failing handler gets the same batch again after a backoff,
 * never a later one. When the subscription itself fails (server restart, network), it is opened again
 * after the last handled position; events at or before that position are dropped on arrival, so a
 * resubscription never delivers twice.
 */
export class EventStoreDbSubscription implements Subscription {
  private pos: number;
  private stopped = false;
  private current?: AllStreamSubscription;
  private connectFailures = 0;
  private waiters: { target: number; resolve: () => void }[] = [];
  private wakeStop!: () => void;
  private readonly stopSignal = new Promise<void>((r) => (this.wakeStop = r));
  private readonly done: Promise<void>;

  constructor(
    private readonly source: EventStoreDbSubscriptionSource,
    private readonly handler: BatchHandler,
    fromPosition: number,
    private readonly batchSize: number,
    private readonly onError?: (error: unknown, attempt: number) => void,
    private readonly onStopped?: (s: EventStoreDbSubscription) => void,
  ) {
    this.pos = fromPosition;
    this.done = this.run();
  }

  get position(): number {
    return this.pos;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let sub: AllStreamSubscription | undefined;
      try {
        sub = this.source.open(this.pos);
        this.current = sub;
        await this.consume(sub);
      } catch (e) {
        if (this.stopped) break;
        this.connectFailures++;
        this.onError?.(e, this.connectFailures);
        await Promise.race([sleep(backoff(this.connectFailures)), this.stopSignal]);
      } finally {
        this.current = undefined;
        if (sub) {
          await sub.unsubscribe().catch(() => undefined);
          sub.destroy();
        }
      }
    }
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** Returns when stopped; throws when the subscription fails or ends, after handling what it buffered. */
  private async consume(sub: AllStreamSubscription): Promise<void> {
    let failure: unknown;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    // Listeners go on before anything can be emitted (the gRPC call starts asynchronously), and stay:
    // an 'error' without a listener would crash the process.
    sub.on('error', (e) => {
      failure ??= e;
      poke();
    });
    sub.on('end', () => {
      failure ??= new Error('EventStoreDB subscription ended');
      poke();
    });
    sub.on('close', () => {
      failure ??= new Error('EventStoreDB subscription closed');
      poke();
    });
    sub.on('confirmation', () => (this.connectFailures = 0));
    sub.on('readable', poke);

    while (!this.stopped) {
      const raw: AllStreamResolvedEvent[] = [];
      let item: AllStreamResolvedEvent | null;
      while (raw.length < this.batchSize && (item = sub.read()) !== null) raw.push(item);
      if (raw.length === 0) {
        if (failure !== undefined) throw failure;
        // No await between the empty read() and arming `wake`: a 'readable' cannot slip in between.
        await Promise.race([new Promise<void>((r) => (wake = r)), this.stopSignal]);
        continue;
      }
      const batch: StoredEvent[] = [];
      for (const r of raw) {
        const e = this.source.convert(r);
        if (e && e.position > this.pos) batch.push(e);
      }
      if (batch.length > 0) await this.deliver(batch);
    }
  }

  private async deliver(batch: StoredEvent[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.handler(batch);
      } catch (e) {
        this.onError?.(e, attempt);
        if (this.stopped) return;
        await Promise.race([sleep(backoff(attempt)), this.stopSignal]);
        if (this.stopped) return; // not handled: the position stays before this batch
        continue;
      }
      this.pos = batch[batch.length - 1].position;
      this.waiters = this.waiters.filter((w) => {
        if (this.pos < w.target) return true;
        w.resolve();
        return false;
      });
      return;
    }
  }

  /**
   * The target is the newest event this subscription would deliver (same stream filter), so reaching
   * it means everything up to the head at call time was handled, even when newer events elsewhere in
   * `$all` belong to streams it does not see.
   */
  async caughtUp(): Promise<void> {
    if (this.stopped) return;
    const target = await this.source.head();
    if (this.pos >= target || this.stopped) return;
    await new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.wakeStop();
      void this.current?.unsubscribe().catch(() => undefined);
    }
    await this.done;
    this.onStopped?.(this);
  }
}
