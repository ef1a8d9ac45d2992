import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, type TrellisBuild, trellisBuild } from './paths';

/**
 * The release before this one, which the rolling-upgrade test runs beside the current build: the
 * last commit before capability versions (docs/capability-versions.md). It speaks protocol 1 only
 * (refuses any other version) and has no --proxy-protocol or --plain-http. Move it forward when a
 * release is cut, so the test always upgrades from the previous one.
 */
export const PREVIOUS_RELEASE = '95509b788e445ad215c181786348861336457fdf';

/** Written last: a cache directory without it is a build that did not finish, and is redone. */
const MARKER = '.trellis-release-complete';

/**
 * Builds `commit` from this repository's git history into /var/tmp/trellis-release-<commit> (or
 * reuses that build when complete) and returns its entry points. No dashboard: the lab runs the
 * CLIs only. Throws with the reason when the commit is not in the repository (a shallow clone), so
 * the test fails instead of silently testing nothing.
 */
export function previousReleaseBuild(
  commit: string = PREVIOUS_RELEASE,
  log: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): TrellisBuild {
  const root = repoRoot(__dirname);
  const dir = join(process.env.TRELLIS_RELEASE_CACHE ?? '/var/tmp', `trellis-release-${commit}`);
  if (existsSync(join(dir, MARKER))) {
    log(`previous release ${commit.slice(0, 7)}: cached build in ${dir}`);
    return checkedBuild(dir);
  }
  const known = spawnSync('git', ['-C', root, 'cat-file', '-e', `${commit}^{commit}`]);
  if (known.status !== 0)
    throw new Error(
      `previous release ${commit} is not in the git repository at ${root} ` +
        `(a shallow clone? run \`git fetch --unshallow\`): the rolling-upgrade test needs it`,
    );
  const t0 = Date.now();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tar = join(dir, '.source.tar');
  const steps: Array<{ what: string; argv: string[]; cwd: string }> = [
    { what: 'git archive', argv: ['git', '-C', root, 'archive', '-o', tar, commit], cwd: root },
    { what: 'unpack', argv: ['tar', '-xf', tar, '-C', dir], cwd: dir },
    { what: 'pnpm install', argv: ['pnpm', 'install', '--offline', '--frozen-lockfile'], cwd: dir },
    { what: 'tsc -b', argv: ['pnpm', 'exec', 'tsc', '-b', 'tsconfig.build.json'], cwd: dir },
  ];
  for (const s of steps) {
    const t = Date.now();
    log(`previous release ${commit.slice(0, 7)}: ${s.what} in ${dir} …`);
    const r = spawnSync(s.argv[0]!, s.argv.slice(1), { cwd: s.cwd, encoding: 'utf8', env: buildEnv() });
    if (r.status !== 0)
      throw new Error(
        `previous release ${commit}: \`${s.argv.join(' ')}\` failed (${r.error?.message ?? `exit ${r.status}`}):\n` +
          `${r.stdout ?? ''}\n${r.stderr ?? ''}`.slice(-4000),
      );
    log(
      `previous release ${commit.slice(0, 7)}: ${s.what} done in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
  }
  rmSync(tar, { force: true });
  const build = checkedBuild(dir);
  writeFileSync(join(dir, MARKER), `${new Date().toISOString()}\n`);
  log(`previous release ${commit.slice(0, 7)}: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return build;
}

/** The CLIs the lab runs, all of them (trellisBuild leaves the relay to RelayRunner). */
function checkedBuild(dir: string): TrellisBuild {
  const build = trellisBuild(dir);
  if (!existsSync(build.relayCli)) throw new Error(`previous release in ${dir}: no ${build.relayCli}`);
  return build;
}

/** No CI or workspace settings of the caller's that would change what pnpm does there. */
function buildEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k.startsWith('PNPM_')) delete env[k];
  return env;
}
