/** One jest run covers unit tests (libs), the adapter contract suite and the HTTP tests (test/). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    // isolatedModules: transpile only, fast; `npm run typecheck` (run by .ci/run) checks the types.
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json', diagnostics: false }],
  },
  moduleNameMapper: {
    '^@idlc/(domain|event-store|sql|sso-verification)$': '<rootDir>/libs/$1/src',
  },
  setupFiles: ['reflect-metadata'],
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
