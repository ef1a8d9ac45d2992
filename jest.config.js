// One jest for the whole repo. Workspace packages resolve to their TypeScript sources, so tests
// never depend on a stale build. Type checking is `pnpm typecheck`, not the test transform.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }],
};
const moduleNameMapper = {
  '^@trellis/(proto|crypto|firewall|noise|reflector|portmap|tls|policy|metrics|dns)$':
    '<rootDir>/packages/$1/src',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', rootDir: __dirname };

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/packages/*/test/**/*.test.ts',
        '<rootDir>/apps/*/test/**/*.test.ts',
        '<rootDir>/infra/test/**/*.test.ts',
      ],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/test/**/*.test.ts'],
      testTimeout: 300000,
    },
  ],
};
