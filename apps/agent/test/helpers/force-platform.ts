// Jest setup for the agent@darwin and agent@win32 projects: process.platform is what the project
// names, before any module under test reads it (the code under test picks its OS by it).
const forced = (globalThis as { FORCED_PLATFORM?: NodeJS.Platform }).FORCED_PLATFORM;
if (forced) Object.defineProperty(process, 'platform', { value: forced, configurable: true });
