import type { EventStore, StoredEvent, Subscription } from '@idlc/event-store';
import type { SqlDatabase, SqlExecutor } from '@idlc/sql';
import { BatchContext, Projection } from './projection';

const CHECKPOINTS_DDL = `
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name TEXT PRIMARY KEY,
  position BIGINT NOT NULL,
  version INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);`;

/**
 * Bulk mode: a runner that is far behind the head (a rebuild, a version bump, a fresh start on an
 * existing store, a long outage) applies much larger batches, each still in one transaction with
 * its checkpoints, and a projection starting from zero has its deferrable indexes created once at
 * the end instead of maintained row by row.
 */
export interface BulkOptions {
  /** Catch up in bulk mode when at least this many events behind the head. */
  threshold: number;
  /** Events read and applied at a time in bulk mode. */
  batchSize: number;
  /**
   * Events per transaction in bulk mode (whole batches): fewer commits write each page of a
   * randomly-keyed index fewer times. On SQLite, writes from the API wait for the transaction.
   */
  commitEvery: number;
}

export const DEFAULT_BULK: BulkOptions = { threshold: 20_000, batchSize: 10_000, commitEvery: 100_000 };

export interface ProjectionStatus {
  name: string;
  version: number;
  position: number;
}

/**
 * Drives every projection from one catch-up subscription on the store's global order: the store is
 * read once per batch, each projection skips what its own checkpoint already covers, and effects
 * and checkpoints commit in one transaction.
 */
export class ProjectionRunner {
  private subscription?: Subscription;
  /** start(): the bulk catch-up that runs before the live subscription is opened. */
  private starting?: Promise<void>;
  private stopping = false;
  private readonly checkpoints = new Map<string, number>();
  private lastError?: unknown;
  onError?: (error: unknown, attempt: number) => void;

  constructor(
    private readonly store: EventStore,
    private readonly db: SqlDatabase,
    readonly projections: Projection[],
    private readonly now: () => number,
    private readonly batchSize = 1000,
    private readonly bulk: BulkOptions = DEFAULT_BULK,
  ) {}

  /**
   * Creates read-model tables. A projection whose version changed has its tables dropped and made
   * again from its DDL (a new version may change their shape, not only their rows) and rebuilds
   * from zero. That happens in one transaction that first locks its checkpoint row and reads the
   * version again, so of processes starting side by side after an upgrade (API and worker) only the
   * first does it: a later one must not drop tables another is already rebuilding.
   */
  async prepare(): Promise<void> {
    await this.db.exec(CHECKPOINTS_DDL);
    const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''; // SQLite: BEGIN IMMEDIATE already excludes other writers
    for (const p of this.projections) {
      const row = await this.readCheckpoint(this.db, p.name);
      if (row && row.version !== p.version) {
        await this.db.transaction(async (tx) => {
          const locked = await this.readCheckpoint(tx, p.name, lock);
          if (locked && locked.version === p.version) return; // upgraded by another process meanwhile
          await tx.exec(p.tables.map((t) => `DROP TABLE IF EXISTS ${t};`).join('\n'));
          await tx.exec(p.ddl(this.db.dialect));
          await this.resetCheckpoint(tx, p);
        });
      }
      await this.db.exec(p.ddl(this.db.dialect));
      this.checkpoints.set(p.name, (await this.readCheckpoint(this.db, p.name))?.position ?? 0);
    }
  }

  private async readCheckpoint(db: SqlExecutor, name: string, lock = ''): Promise<{ position: number; version: number } | undefined> {
    const row = await db.get<{ position: number; version: number }>(`SELECT position, version FROM projection_checkpoints WHERE name = ?${lock}`, [name]);
    return row ? { position: Number(row.position), version: Number(row.version) } : undefined;
  }

  private resetCheckpoint(tx: SqlExecutor, p: Projection): Promise<number> {
    return tx.run(
      `INSERT INTO projection_checkpoints (name, position, version, updated_at) VALUES (?, 0, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = 0, version = excluded.version, updated_at = excluded.updated_at`,
      [p.name, p.version, this.now()],
    );
  }

  /** Empties the named (default: all) read models and sets their checkpoints to zero. */
  async reset(names = this.projections.map((p) => p.name)): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const p of this.projections.filter((x) => names.includes(x.name))) {
        for (const t of p.tables) await tx.run(`DELETE FROM ${t}`);
        await this.resetCheckpoint(tx, p);
        this.checkpoints.set(p.name, 0);
      }
    });
  }

  private minCheckpoint(): number {
    return Math.min(...this.projections.map((p) => this.checkpoints.get(p.name) ?? 0));
  }

  async handle(batch: StoredEvent[]): Promise<void> {
    let at!: Map<string, number>;
    await this.db.transaction(async (tx) => {
      at = new Map(this.checkpoints);
      await this.applyBatch(batch, tx, at);
    });
    this.advance(at);
    this.lastError = undefined;
  }

  /**
   * Applies one batch inside `tx`: each projection gets the events after its checkpoint in `at`
   * (the committed checkpoints, moved on by the batches already applied in this transaction).
   */
  private async applyBatch(batch: StoredEvent[], tx: SqlExecutor, at: Map<string, number>): Promise<void> {
    const last = batch[batch.length - 1].position;
    const ctx: BatchContext = { identityStates: new Map() };
    for (const p of this.projections) {
      const from = at.get(p.name) ?? 0;
      if (last <= from) continue;
      const todo = from < batch[0].position ? batch : batch.filter((e) => e.position > from);
      await p.apply(todo, tx, ctx);
      await tx.run(
        `INSERT INTO projection_checkpoints (name, position, version, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version, updated_at = excluded.updated_at`,
        [p.name, last, p.version, this.now()],
      );
      at.set(p.name, last);
    }
  }

  /** After a commit: the checkpoints it wrote are the ones to go on from. */
  private advance(at: Map<string, number>): void {
    for (const [name, position] of at) if ((this.checkpoints.get(name) ?? 0) < position) this.checkpoints.set(name, position);
  }

  /** Live delivery; when far behind, a bulk catch-up runs first (see BulkOptions). */
  start(): void {
    if (this.subscription || this.starting) return;
    this.stopping = false;
    this.starting = (async () => {
      try {
        const head = await this.store.headPosition();
        // Requests are being served meanwhile: one batch per transaction keeps their writes from
        // waiting on a long one.
        if (head - this.minCheckpoint() >= this.bulk.threshold) await this.catchUpInBulk(head, undefined, () => this.stopping, this.bulk.batchSize);
      } catch (e) {
        // The subscription below picks up from the last committed batch and retries as usual.
        this.lastError = e;
        this.onError?.(e, 1);
      }
      if (this.stopping) return;
      this.subscription = this.store.subscribeToAll((batch) => this.handle(batch), {
        fromPosition: this.minCheckpoint(),
        batchSize: this.batchSize,
        onError: (e, attempt) => {
          this.lastError = e;
          this.onError?.(e, attempt);
        },
      });
    })().finally(() => {
      this.starting = undefined;
    });
  }

  /** Resolves once every projection has applied everything up to the head at call time. */
  async caughtUp(): Promise<void> {
    await this.starting;
    if (this.subscription) return this.subscription.caughtUp();
    await this.runToHead();
  }

  /** Without a live subscription: apply everything up to the head (CLI rebuilds), in bulk mode when far behind. */
  async runToHead(progress?: (position: number, head: number) => void): Promise<void> {
    const head = await this.store.headPosition();
    if (head - this.minCheckpoint() >= this.bulk.threshold) await this.catchUpInBulk(head, progress);
    else await this.applyUpTo(head, this.batchSize, progress);
  }

  private async applyUpTo(head: number, batchSize: number, progress?: (position: number, head: number) => void): Promise<void> {
    let from = this.minCheckpoint();
    while (from < head) {
      const batch = await this.store.readAll({ fromPosition: from, maxCount: Math.min(batchSize, head - from) });
      if (!batch.length) break;
      await this.handle(batch);
      from = batch[batch.length - 1].position;
      progress?.(from, head);
    }
  }

  /**
   * Large batches up to `head`, several to a transaction. Projections starting from zero lose their
   * deferrable indexes until the end; a crash in between leaves them missing only until the next
   * prepare(), which creates every index again (IF NOT EXISTS) before anything is applied, and the
   * checkpoints committed with each transaction say where to go on from.
   */
  private async catchUpInBulk(
    head: number,
    progress?: (position: number, head: number) => void,
    abort?: () => boolean,
    commitEvery = this.bulk.commitEvery,
  ): Promise<void> {
    const fresh = this.projections.filter((p) => (this.checkpoints.get(p.name) ?? 0) === 0 && p.deferrableIndexes?.length);
    const restore = await this.db.tuneForBulk?.();
    try {
      if (fresh.length) await this.db.exec(fresh.flatMap((p) => p.deferrableIndexes!.map((i) => `DROP INDEX IF EXISTS ${i};`)).join('\n'));
      let from = this.minCheckpoint();
      while (from < head && !abort?.()) {
        let at!: Map<string, number>;
        const reached = await this.db.transaction(async (tx) => {
          at = new Map(this.checkpoints);
          let pos = from;
          while (pos < head && pos - from < commitEvery) {
            const batch = await this.store.readAll({ fromPosition: pos, maxCount: Math.min(this.bulk.batchSize, commitEvery - (pos - from), head - pos) });
            if (!batch.length) break;
            await this.applyBatch(batch, tx, at);
            pos = batch[batch.length - 1].position;
          }
          return pos;
        });
        this.advance(at);
        this.lastError = undefined;
        if (reached === from) break;
        from = reached;
        progress?.(from, head);
      }
    } finally {
      try {
        for (const p of fresh) await this.db.exec(p.ddl(this.db.dialect));
      } finally {
        await restore?.();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting;
    await this.subscription?.stop();
    this.subscription = undefined;
  }

  status(): ProjectionStatus[] {
    return this.projections.map((p) => ({ name: p.name, version: p.version, position: this.checkpoints.get(p.name) ?? 0 }));
  }

  get error(): unknown {
    return this.lastError;
  }

  /** Events between the slowest projection and the store's head. */
  async lag(): Promise<number> {
    return Math.max(0, (await this.store.headPosition()) - this.minCheckpoint());
  }
}
