export * from './port';
export * from './errors';
export * from './subscription';
export * from './serialization';
export * from './ids';
export * from './sqlite/sqlite-event-store';
export * from './postgres/postgres-event-store';
export * from './eventstoredb/eventstoredb-event-store';
