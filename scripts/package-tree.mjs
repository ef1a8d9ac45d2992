// Helpers of scripts/package for the staged package tree (plain Node, no dependencies):
//   own DIR        every hard link becomes a file of its own: pnpm links files from its store and
//                  the workspace, which a chmod here must not change (and dpkg-deb would keep links)
//   symlinks DIR   fail unless every symbolic link stays inside DIR (relative, resolvable)
//   modes DIR      directories and scripts (#!) 0755, other files 0644
//   licenses DIR   copyright-format paragraphs naming each bundled npm package and its license
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
} from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    yield [p, e];
    if (e.isDirectory()) yield* walk(p);
  }
}

function own(root) {
  for (const [p, e] of walk(root)) {
    if (!e.isFile() || lstatSync(p).nlink < 2) continue;
    copyFileSync(p, `${p}.own`);
    renameSync(`${p}.own`, p);
  }
}

function symlinks(root) {
  const bad = [];
  for (const [p, e] of walk(root)) {
    if (!e.isSymbolicLink()) continue;
    const target = readlinkSync(p);
    const inside =
      !isAbsolute(target) && existsSync(p) && !relative(realpathSync(root), realpathSync(p)).startsWith('..');
    if (!inside) bad.push(`${relative(root, p)} -> ${target}`);
  }
  if (bad.length > 0) throw new Error(`symbolic links that leave the package tree:\n  ${bad.join('\n  ')}`);
}

function isScript(p) {
  const fd = openSync(p, 'r');
  const head = Buffer.alloc(2);
  const n = readSync(fd, head, 0, 2, 0);
  closeSync(fd);
  return n === 2 && head.toString('latin1') === '#!';
}

function modes(root) {
  chmodSync(root, 0o755);
  for (const [p, e] of walk(root)) {
    if (e.isDirectory()) chmodSync(p, 0o755);
    else if (e.isFile()) chmodSync(p, isScript(p) ? 0o755 : 0o644);
  }
}

function licenses(lib) {
  const store = join(lib, 'node_modules/.pnpm');
  const out = [];
  for (const entry of readdirSync(store).sort()) {
    const nm = join(store, entry, 'node_modules');
    if (!existsSync(nm)) continue;
    for (const scope of readdirSync(nm)) {
      const names = scope.startsWith('@')
        ? readdirSync(join(nm, scope)).map((n) => `${scope}/${n}`)
        : [scope];
      for (const name of names) {
        const dir = join(nm, name);
        // Links are the package's dependencies (listed under their own entry); ours are Trellis.
        if (lstatSync(dir).isSymbolicLink() || name.startsWith('@trellis/')) continue;
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        const license = typeof pkg.license === 'string' ? pkg.license : 'other';
        out.push(
          '',
          `Files: usr/lib/trellis/node_modules/.pnpm/${entry}/*`,
          `Copyright: the authors of ${pkg.name} ${pkg.version}`,
          `License: ${license}`,
          ' The full text is in the license file of the package directory.',
        );
      }
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

const [cmd, dir] = process.argv.slice(2);
const commands = { own, symlinks, modes, licenses };
if (!commands[cmd] || !dir) {
  process.stderr.write('usage: package-tree.mjs own|symlinks|modes|licenses DIR\n');
  process.exit(2);
}
try {
  commands[cmd](dir);
} catch (err) {
  process.stderr.write(`package-tree ${cmd}: ${err.message}\n`);
  process.exit(1);
}
