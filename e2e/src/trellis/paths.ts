import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The monorepo root: the nearest parent holding pnpm-workspace.yaml (works from src and dist). */
export function repoRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no pnpm-workspace.yaml above ${from}`);
    dir = up;
  }
}

export interface TrellisBuild {
  brokerCli: string;
  agentDaemon: string;
  agentCli: string;
  relayCli: string;
}

/** The built entry points the scenario runs; a clear error when `pnpm build` has not been run. */
export function trellisBuild(root: string = repoRoot()): TrellisBuild {
  const build = {
    brokerCli: join(root, 'apps/broker/dist/cli.js'),
    agentDaemon: join(root, 'apps/agent/dist/daemon.js'),
    agentCli: join(root, 'apps/agent/dist/cli.js'),
    relayCli: join(root, 'apps/relay/dist/cli.js'),
  };
  // The relay is checked when a test starts one (RelayRunner), so other tests do not need it.
  const missing = [build.brokerCli, build.agentDaemon, build.agentCli].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`missing build output: ${missing.join(', ')}\nrun \`pnpm build\` in ${root} first`);
  }
  return build;
}

/** Environment for broker and agents: no inherited settings that would change what they do. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'DATABASE_URL' || k.startsWith('TRELLIS_') || k.startsWith('NODE_OPTIONS')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** `--flag v1 --flag v2 …`, duplicates dropped. */
export function repeatFlag(flag: string, values: string | readonly string[]): string[] {
  return [...new Set(typeof values === 'string' ? [values] : values)].flatMap((v) => [flag, v]);
}
