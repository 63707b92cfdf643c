export * from './sql';
export * from './sqlite';
export * from './postgres';
