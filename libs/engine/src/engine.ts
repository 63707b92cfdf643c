import { Clock, systemClock } from '@idlc/domain';
import { EngineConfig, loadConfig } from './config/config';
import { IdentityCommands } from './identity/identity-commands';
import { IdentityRepository } from './identity/identity-repository';
import { lifecycleFromConfig, Policies } from './identity/policies';
import { Messaging } from './messaging/messaging';
import { openPersistence, Persistence } from './persistence/open-persistence';
import { coreProjections, ProjectionRunner } from './projections';
import { DeadlineScheduler, DeadlinesProjection } from './sagas';

export interface EngineOptions {
  config?: EngineConfig;
  clock?: Clock;
}

/**
 * The engine without any transport: persistence, policies, the identity write path and the
 * projections. The HTTP app, the worker, the CLI and the benchmarks all build on one of these.
 */
export class Engine {
  private started = false;
  /** Kafka in (HR feed) and out (lifecycle events); created by start() when KAFKA_BROKERS is set. */
  messaging?: Messaging;

  private constructor(
    readonly config: EngineConfig,
    readonly clock: Clock,
    readonly persistence: Persistence,
    readonly policies: Policies,
    readonly repository: IdentityRepository,
    readonly commands: IdentityCommands,
    readonly projections: ProjectionRunner,
    /** Fires deadlines (future-dated activations and terminations, retention, inactivity) from the deadlines projection. */
    readonly scheduler: DeadlineScheduler,
  ) {}

  static async open(options: EngineOptions = {}): Promise<Engine> {
    const config = options.config ?? loadConfig();
    const clock = options.clock ?? systemClock;
    const policies = new Policies(config.birthrightPolicyFile, lifecycleFromConfig(config));
    const persistence = await openPersistence(config, clock);
    try {
      const repository = new IdentityRepository(persistence.store, persistence.store, config.aggregateCacheSize, config.snapshotEvery);
      const commands = new IdentityCommands(persistence.store, repository, policies, clock);
      const projections = new ProjectionRunner(
        persistence.store,
        persistence.readDb,
        coreProjections(policies.lifecycle()),
        () => clock.now().getTime(),
        undefined,
        config.projectionBulk,
      );
      await projections.prepare();
      const deadlines = projections.projections.find((p): p is DeadlinesProjection => p instanceof DeadlinesProjection);
      const scheduler = new DeadlineScheduler(persistence.readDb, commands, clock, policies, deadlines);
      return new Engine(config, clock, persistence, policies, repository, commands, projections, scheduler);
    } catch (e) {
      await persistence.close();
      throw e;
    }
  }

  get store() {
    return this.persistence.store;
  }

  get readDb() {
    return this.persistence.readDb;
  }

  /** Runs projections (and, once they exist, sagas) in this process unless it is an api-only process. */
  start(): void {
    if (this.started || this.config.workerMode === 'api') return;
    this.started = true;
    this.projections.start();
    this.scheduler.start();
    if (this.config.kafka) {
      this.messaging = new Messaging(this.config.kafka, this);
      // Never rejects: it retries until the broker answers, so an outage does not stop the engine.
      void this.messaging.start();
    }
  }

  async close(): Promise<void> {
    await this.scheduler.stop();
    await this.messaging?.stop();
    await this.projections.stop();
    await this.persistence.close();
  }
}
