import type { EventStore, StoredEvent, Subscription } from '@idlc/event-store';
import type { SqlDatabase } from '@idlc/sql';
import { Projection } from './projection';

const CHECKPOINTS_DDL = `
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name TEXT PRIMARY KEY,
  position BIGINT NOT NULL,
  version INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);`;

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
  private readonly checkpoints = new Map<string, number>();
  private lastError?: unknown;
  onError?: (error: unknown, attempt: number) => void;

  constructor(
    private readonly store: EventStore,
    private readonly db: SqlDatabase,
    readonly projections: Projection[],
    private readonly now: () => number,
    private readonly batchSize = 1000,
  ) {}

  /** Creates read-model tables; a projection whose version changed is reset to rebuild from zero. */
  async prepare(): Promise<void> {
    await this.db.exec(CHECKPOINTS_DDL);
    for (const p of this.projections) {
      await this.db.exec(p.ddl(this.db.dialect));
      const row = await this.db.get<{ position: number; version: number }>('SELECT position, version FROM projection_checkpoints WHERE name = ?', [p.name]);
      if (row && Number(row.version) !== p.version) {
        await this.reset([p.name]);
      } else {
        this.checkpoints.set(p.name, row ? Number(row.position) : 0);
      }
    }
  }

  /** Empties the named (default: all) read models and sets their checkpoints to zero. */
  async reset(names = this.projections.map((p) => p.name)): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const p of this.projections.filter((x) => names.includes(x.name))) {
        for (const t of p.tables) await tx.run(`DELETE FROM ${t}`);
        await tx.run(
          `INSERT INTO projection_checkpoints (name, position, version, updated_at) VALUES (?, 0, ?, ?)
           ON CONFLICT (name) DO UPDATE SET position = 0, version = excluded.version, updated_at = excluded.updated_at`,
          [p.name, p.version, this.now()],
        );
        this.checkpoints.set(p.name, 0);
      }
    });
  }

  private minCheckpoint(): number {
    return Math.min(...this.projections.map((p) => this.checkpoints.get(p.name) ?? 0));
  }

  async handle(batch: StoredEvent[]): Promise<void> {
    const last = batch[batch.length - 1].position;
    await this.db.transaction(async (tx) => {
      for (const p of this.projections) {
        const from = this.checkpoints.get(p.name) ?? 0;
        if (last <= from) continue;
        const todo = from < batch[0].position ? batch : batch.filter((e) => e.position > from);
        await p.apply(todo, tx);
        await tx.run(
          `INSERT INTO projection_checkpoints (name, position, version, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version, updated_at = excluded.updated_at`,
          [p.name, last, p.version, this.now()],
        );
      }
    });
    for (const p of this.projections) if ((this.checkpoints.get(p.name) ?? 0) < last) this.checkpoints.set(p.name, last);
    this.lastError = undefined;
  }

  start(): void {
    if (this.subscription) return;
    this.subscription = this.store.subscribeToAll((batch) => this.handle(batch), {
      fromPosition: this.minCheckpoint(),
      batchSize: this.batchSize,
      onError: (e, attempt) => {
        this.lastError = e;
        this.onError?.(e, attempt);
      },
    });
  }

  /** Resolves once every projection has applied everything up to the head at call time. */
  async caughtUp(): Promise<void> {
    if (this.subscription) return this.subscription.caughtUp();
    await this.runToHead();
  }

  /** Without a live subscription: apply everything up to the head (CLI rebuilds). */
  async runToHead(progress?: (position: number, head: number) => void): Promise<void> {
    const head = await this.store.headPosition();
    let from = this.minCheckpoint();
    while (from < head) {
      const batch = await this.store.readAll({ fromPosition: from, maxCount: this.batchSize });
      if (!batch.length) break;
      await this.handle(batch);
      from = batch[batch.length - 1].position;
      progress?.(from, head);
    }
  }

  async stop(): Promise<void> {
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
