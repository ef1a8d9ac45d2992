import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { INFRA, ROOT } from './helpers';

// The images cannot be built here (no Docker engine): these check what a build would need.
const IMAGES = ['broker', 'relay', 'agent'];

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}
/** The Dockerfile's stages with their instructions, continuation lines joined. */
function stages(file: string): Stage[] {
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const l of lines) {
    const from = /^FROM (\S+)(?: AS (\S+))?$/i.exec(l);
    if (from) out.push({ from: from[1]!, name: from[2], lines: [] });
    else out.at(-1)!.lines.push(l);
  }
  return out;
}
const copies = (s: Stage) =>
  s.lines
    .filter((l) => l.startsWith('COPY '))
    .map((l) => {
      const parts = l.split(/\s+/).slice(1);
      const from = parts[0]!.startsWith('--from=') ? parts.shift()!.slice(7) : undefined;
      return { from, sources: parts.slice(0, -1), dest: parts.at(-1)! };
    });
/** The JSON-array form of ENTRYPOINT and CMD, joined as the container runs them. */
const command = (s: Stage): string[] =>
  ['ENTRYPOINT', 'CMD'].flatMap((k) => {
    const l = s.lines.find((x) => x.startsWith(`${k} `));
    return l ? (JSON.parse(l.slice(k.length + 1)) as string[]) : [];
  });
const packageDir = (name: string): string => {
  for (const d of ['broker', 'relay', 'agent', 'dashboard'])
    if (JSON.parse(readFileSync(join(ROOT, 'apps', d, 'package.json'), 'utf8')).name === name)
      return `apps/${d}`;
  throw new Error(`no app is ${name}`);
};

/** Where a file of the final image comes from in the repository (through the build stage). */
function origin(image: string, path: string): string {
  const all = stages(join(INFRA, 'docker', `${image}.Dockerfile`));
  const build = all[0]!.lines.join('\n');
  // The last COPY of a path is what the image holds.
  for (const c of copies(all.at(-1)!).reverse()) {
    const dest = c.dest.replace(/\/$/, '');
    if (path !== dest && !path.startsWith(`${dest}/`)) continue;
    const rest = path.slice(dest.length);
    const src = c.sources[0]!;
    if (!c.from) return posix.join(src, rest);
    // /out/<dir> is `pnpm --filter <name> deploy … /out/<dir>` of a workspace app.
    const full = posix.join(src, rest);
    const m = /^\/out\/([^/]+)(\/.*)$/.exec(full);
    if (!m) throw new Error(`${image}: ${full} is not under /out`);
    const deploy = new RegExp(`pnpm --filter (\\S+) deploy [^&]*/out/${m[1]}(\\s|$)`, 'm').exec(build);
    if (deploy) return `${packageDir(deploy[1]!)}${m[2]}`;
    const copied = new RegExp(`cp -r (\\S+) /out/${m[1]}/(\\S+)`).exec(build);
    if (copied) return posix.join(copied[1]!, posix.relative(`/${copied[2]}`, m[2]!));
    throw new Error(`${image}: nothing in the build stage makes /out/${m[1]}`);
  }
  throw new Error(`${image}: nothing copies ${path} into the image`);
}

describe('Dockerfiles (infra/docker)', () => {
  it.each(IMAGES)('%s: node:20-bookworm-slim, the pnpm of the repository, a .dockerignore', (image) => {
    const file = join(INFRA, 'docker', `${image}.Dockerfile`);
    for (const s of stages(file)) expect(s.from).toBe('node:20-bookworm-slim');
    const pnpm = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).packageManager;
    expect(readFileSync(file, 'utf8')).toContain(`npm install -g ${pnpm}`);
    expect(existsSync(`${file}.dockerignore`)).toBe(true);
  });

  it.each(IMAGES)('%s: every COPY source exists in the repository and is not ignored', (image) => {
    const file = join(INFRA, 'docker', `${image}.Dockerfile`);
    const ignored = readFileSync(`${file}.dockerignore`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('**/'))
      .map((l) => l.slice(3));
    for (const s of stages(file))
      for (const c of copies(s).filter((x) => !x.from))
        for (const src of c.sources) {
          expect(existsSync(join(ROOT, src))).toBe(true);
          for (const part of src.split('/')) expect(ignored).not.toContain(part);
        }
  });

  it.each(IMAGES)('%s: what the container runs is what the build stage builds', (image) => {
    const all = stages(join(INFRA, 'docker', `${image}.Dockerfile`));
    const entries = command(all.at(-1)!).filter((a) => a.endsWith('.js'));
    expect(entries.length).toBe(1);
    const repoPath = origin(image, entries[0]!);
    const m = /^(apps\/[a-z]+)\/dist\/(.+)\.js$/.exec(repoPath);
    expect(m).not.toBeNull();
    const [, app, entry] = m!;
    // tsc -b of that app turns src/<entry>.ts into dist/<entry>.js.
    expect(all[0]!.lines.join('\n')).toContain(`tsc -b ${app}`);
    const tsconfig = JSON.parse(readFileSync(join(ROOT, app!, 'tsconfig.json'), 'utf8'));
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(existsSync(join(ROOT, app!, 'src', `${entry}.ts`))).toBe(true);
  });

  it("broker: the dashboard is where the broker looks for it, beside the broker's own directory", () => {
    const cli = command(stages(join(INFRA, 'docker', 'broker.Dockerfile')).at(-1)!).find((a) =>
      a.endsWith('.js'),
    )!;
    // apps/broker/src/http/dashboard-static.ts: <broker>/dist/http/../../../dashboard/dist
    const dashboard = posix.join(
      posix.dirname(cli),
      'http',
      '..',
      '..',
      '..',
      'dashboard',
      'dist',
      'index.html',
    );
    expect(origin('broker', dashboard)).toBe('apps/dashboard/dist/index.html');
    expect(origin('broker', '/opt/trellis/broker/drizzle/0000_init.sql')).toBe(
      'apps/broker/drizzle/0000_init.sql',
    );
    expect(existsSync(join(ROOT, 'apps/broker/drizzle/0000_init.sql'))).toBe(true);
    expect(origin('broker', '/opt/trellis/healthz.js')).toBe('infra/docker/healthz.js');
  });

  it('healthz.js: 0 for a 200 over a self-signed certificate, 1 otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-healthz-'));
    execFileSync('bash', [join(INFRA, 'compose', 'make-certs.sh'), 'localhost', dir], { stdio: 'pipe' });
    const server = createServer(
      { cert: readFileSync(join(dir, 'internal.crt')), key: readFileSync(join(dir, 'internal.key')) },
      (req, res) => res.writeHead(req.url === '/healthz' ? 200 : 503).end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const run = (url: string) =>
      new Promise<number>((r) =>
        execFile(process.execPath, [join(INFRA, 'docker', 'healthz.js'), url], (err) =>
          r(err ? Number(err.code) : 0),
        ),
      );
    try {
      expect(await run(`https://127.0.0.1:${port}/healthz`)).toBe(0);
      expect(await run(`https://127.0.0.1:${port}/down`)).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await run(`https://127.0.0.1:${port}/healthz`)).toBe(1);
  });
});
