/** Nest injection tokens for the engine's ports. */
export const CLOCK = Symbol('Clock');
export const EVENT_STORE = Symbol('EventStore');
export const SNAPSHOT_STORE = Symbol('SnapshotStore');
export const READ_DB = Symbol('ReadModelDatabase');
export const ENGINE_CONFIG = Symbol('EngineConfig');
