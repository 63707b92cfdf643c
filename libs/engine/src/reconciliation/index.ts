export * from './csv';
export * from './snapshot';
export * from './compare';
export * from './reconcile';
export * from './format';
