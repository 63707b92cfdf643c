import { Clock, systemClock } from '@idlc/domain';
import { EngineConfig, loadConfig } from './config/config';
import { CredentialStore } from './credentials/credential-store';
import { IdentityCommands } from './identity/identity-commands';
import { IdentityRepository } from './identity/identity-repository';
import { lifecycleFromConfig, Policies } from './identity/policies';
import { Messaging } from './messaging/messaging';
import { openPersistence, Persistence } from './persistence/open-persistence';
import { coreProjections, ProjectionRunner } from './projections';
import { DeadlineScheduler, DeadlinesProjection } from './sagas';
import { DataKeyStore } from './privacy/data-keys';
import { DecryptingEventStore } from './privacy/decrypting-event-store';
import { IdentityErasure } from './privacy/erasure';
import { PersonalDataCipher } from './privacy/personal-data-cipher';
import { LoginOutcomes } from './sso/login-outcomes';

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
    /** The event store every reader uses: personal values decrypted (see DecryptingEventStore). */
    readonly store: DecryptingEventStore,
    /** Per-identity data keys (encryption of personal values, erasure by key destruction). */
    readonly dataKeys: DataKeyStore,
    readonly erasure: IdentityErasure,
    /** Scoped API credentials (stored hashed) that every HTTP route group except health requires. */
    readonly credentials: CredentialStore,
  ) {}

  /** How SSO logins ended in this process (counted by the login hook, exposed as a metric). */
  readonly ssoLogins = new LoginOutcomes();

  static async open(options: EngineOptions = {}): Promise<Engine> {
    const config = options.config ?? loadConfig();
    const clock = options.clock ?? systemClock;
    const policies = new Policies(config.birthrightPolicyFile, lifecycleFromConfig(config));
    const persistence = await openPersistence(config, clock);
    try {
      const dataKeys = await DataKeyStore.open(persistence.readDb, clock, { kek: config.dataKeyEncryptionKey, cacheSize: Math.max(1000, config.aggregateCacheSize) });
      const cipher = new PersonalDataCipher(dataKeys);
      const store = new DecryptingEventStore(persistence.store, cipher);
      const repository = new IdentityRepository(store, store, config.aggregateCacheSize, config.snapshotEvery, persistence.appendsElsewhere);
      const commands = new IdentityCommands(store, repository, policies, clock, cipher);
      const erasure = new IdentityErasure(commands, repository, dataKeys);
      // A read that finds an erasure whose key destruction never happened (a crash) finishes it.
      cipher.onErasureCompleted = (id) => void erasure.complete(id).catch((e) => cipher.onError(id, e as Error));
      const projections = new ProjectionRunner(
        store,
        persistence.readDb,
        coreProjections(policies.lifecycle()),
        () => clock.now().getTime(),
        undefined,
        config.projectionBulk,
      );
      await projections.prepare();
      const deadlines = projections.projections.find((p): p is DeadlinesProjection => p instanceof DeadlinesProjection);
      const scheduler = new DeadlineScheduler(persistence.readDb, commands, clock, policies, deadlines, {
        // A deadline usually fires for an identity nobody touched for days: its aggregate is cold.
        prefetch: (ids) => repository.preload(ids),
      });
      const credentials = await CredentialStore.open(persistence.readDb, clock);
      return new Engine(config, clock, persistence, policies, repository, commands, projections, scheduler, store, dataKeys, erasure, credentials);
    } catch (e) {
      await persistence.close();
      throw e;
    }
  }

  /** The events exactly as stored (personal values encrypted): what the hash chains are computed over. */
  get rawStore() {
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

  /**
   * Stops the engine: call it once the transports stopped taking work. Projections first apply
   * what was appended up to now (bounded by `flushMs`), so a restart is ready with no lag.
   */
  async close(flushMs = 10_000): Promise<void> {
    await this.scheduler.stop();
    await this.messaging?.stop();
    const flush = this.started && flushMs > 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, flushMs).unref()));
    // A projection that keeps failing must not hold the stop: its checkpoint is durable, the next start resumes.
    const flushStep = (step: () => Promise<void>) =>
      flush ? Promise.race([step().catch((e) => console.error('projection flush on close failed:', e)), timeout]) : undefined;
    await flushStep(() => this.projections.caughtUp());
    await this.projections.stop();
    // With the subscription stopped, apply whatever it had not reached yet (an append that committed
    // while it was between reads), still within the same time limit.
    await flushStep(() => this.projections.runToHead());
    clearTimeout(timer);
    await this.persistence.close();
  }
}
