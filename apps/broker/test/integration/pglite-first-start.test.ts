import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../../../../packages/portmap/test/support/fuzz';
import { DatabaseLockedError } from '../../src/db/data-dir-lock';
import { openDatabase } from '../../src/db/database';
import { tempDir } from '../support/backends';
import { cli } from '../support/cli';

jest.setTimeout(240_000);

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

/** `trellis-broker serve` on a data directory, as a process of its own (it is killed). */
function serve(dataDir: string): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--reflector-port',
      '0',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '' } },
  );
  let text = '';
  child.stdout!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

/** Waits for the ready line, or for the process to exit; what it came to. */
async function outcome(
  run: ReturnType<typeof serve>,
): Promise<'ready' | { exit: number | null; output: string }> {
  const ready = new Promise<'ready'>((resolve) => {
    const check = () => (run.output().includes('trellis-broker ready') ? resolve('ready') : undefined);
    run.child.stdout!.on('data', check);
    check();
  });
  const exited = run.exited.then((exit) => ({ exit, output: run.output() }));
  return Promise.race([ready, exited]);
}

describe('the embedded database survives a first start killed at any point', () => {
  it('every later start is ready or exits non-zero with an error line (8 kills at random points)', async () => {
    const random = prng(20261205);
    const results: string[] = [];
    for (let i = 0; i < 8; i++) {
      const dataDir = tempDir();
      const first = serve(dataDir);
      // Anywhere from process start to past the database's creation (PGlite takes ~1–3 s here).
      const killAfter = Math.floor(random() * 3_500);
      await new Promise((r) => setTimeout(r, killAfter));
      first.child.kill('SIGKILL');
      await first.exited;
      const second = serve(dataDir);
      const result = await outcome(second);
      second.child.kill('SIGTERM');
      await second.exited;
      results.push(`${killAfter} ms: ${result === 'ready' ? 'ready' : `exit ${result.exit}`}`);
      if (result !== 'ready') {
        expect(result.exit).not.toBe(0);
        expect(result.output).toMatch(/^error: /m);
      }
      // With the staging directory, a killed first start leaves nothing a later one trips on.
      expect(result).toBe('ready');
    }
    process.stdout.write(`first start killed after: ${results.join(', ')}\n`);
  });

  it('a damaged database makes the start exit non-zero with a clear message, not hang', async () => {
    const dataDir = tempDir();
    const ok = serve(dataDir);
    expect(await outcome(ok)).toBe('ready');
    ok.child.kill('SIGTERM');
    await ok.exited;
    writeFileSync(join(dataDir, 'db', 'global', 'pg_control'), 'not a control file');
    const result = await outcome(serve(dataDir));
    expect(result).not.toBe('ready');
    if (result === 'ready') return;
    expect(result.exit).toBe(1);
    expect(result.output).toMatch(/^error: the embedded database in .* does not open/m);
  });

  it('one process at a time: a second open (the CLI too) gets a clear error, a dead holder is taken over', async () => {
    const dataDir = tempDir();
    const db = await openDatabase({ dataDir });
    try {
      await expect(openDatabase({ dataDir })).rejects.toBeInstanceOf(DatabaseLockedError);
      const listed = await cli(['accounts', 'list', '--data-dir', dataDir]);
      expect(listed.code).toBe(1);
      expect(listed.err).toMatch(/^error: the embedded database is in use by process \d+/);
    } finally {
      await db.close();
    }
    // A lock left by a process that no longer exists (killed): taken over.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(join(dataDir, 'db.lock'), `${gone.pid}\n`);
    const again = await openDatabase({ dataDir });
    await again.close();
  });
});
