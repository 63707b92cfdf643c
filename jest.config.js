/** One jest run covers unit tests (libs), the adapter contract suite and the HTTP tests (test/). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    // isolatedModules: transpile only, fast; `npm run typecheck` (run by .ci/run) checks the types.
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json', diagnostics: false }],
    // content-disposition 3 (under @fastify/static) ships ESM only; Node 20 requires it natively, jest cannot.
    'node_modules/content-disposition/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true, module: 'commonjs' }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
  moduleNameMapper: {
    '^@idlc/(domain|event-store|sql|sso-verification|engine)$': '<rootDir>/libs/$1/src',
  },
  setupFiles: ['reflect-metadata'],
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
