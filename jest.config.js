// One jest for the whole repo. Workspace packages resolve to their TypeScript sources, so tests
// never depend on a stale build. Type checking is `pnpm typecheck`, not the test transform.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }],
};
const moduleNameMapper = {
  '^@trellis/(proto|crypto|firewall|noise|reflector|portmap|tls|policy|metrics|dns)$':
    '<rootDir>/packages/$1/src',
};
/**
 * Agent tests of Linux itself: trellisd and exit routing in namespaces, and koffi loading the
 * machine's own native code (a forced win32 would make it look for Windows' binary).
 */
const LINUX_ONLY_AGENT_TESTS = [
  '/apps/agent/test/daemon\\.test\\.ts$',
  '/apps/agent/test/exit/exit-routing-netns\\.test\\.ts$',
  '/apps/agent/test/windows/(wireguard-nt-dll|wireguard-nt-layout|wfp-layout|wfp-native-dll)\\.test\\.ts$',
];
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
    // The agent's tests again with process.platform forced to macOS and to Windows (issue 16): the
    // code that picks an OS by it must still pass them. Tests of Linux-only parts (namespaces,
    // wireguard-go, nftables, the daemon as a child process) run in `unit` only.
    ...['darwin', 'win32'].map((platform) => ({
      ...common,
      displayName: `agent@${platform}`,
      globals: { FORCED_PLATFORM: platform },
      setupFiles: ['<rootDir>/apps/agent/test/helpers/force-platform.ts'],
      testMatch: ['<rootDir>/apps/agent/test/**/*.test.ts'],
      testPathIgnorePatterns: LINUX_ONLY_AGENT_TESTS,
    })),
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/test/**/*.test.ts'],
      testTimeout: 300000,
    },
  ],
};
