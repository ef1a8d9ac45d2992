import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../../../../packages/portmap/test/support/fuzz';
import { DatabaseLockedError } from '../../src/db/data-dir-lock';
import { openDatabase } from '../../src/db/database';
import { tempDir } from '../support/backends';
import { serveProcess } from '../support/broker-process';
import { cli } from '../support/cli';

jest.setTimeout(240_000);

describe('the embedded database survives a first start killed at any point', () => {
  it('every later start is ready or exits non-zero with an error line (8 kills at random points)', async () => {
    const random = prng(20261205);
    const results: string[] = [];
    for (let i = 0; i < 8; i++) {
      const dataDir = tempDir();
      const first = serveProcess(dataDir);
      // Anywhere from process start to past the database's creation (PGlite takes ~1–3 s here).
      const killAfter = Math.floor(random() * 3_500);
      await new Promise((r) => setTimeout(r, killAfter));
      first.child.kill('SIGKILL');
      await first.exited;
      const second = serveProcess(dataDir);
      const result = await second.outcome();
      second.child.kill('SIGTERM');
      await second.exited;
      results.push(`${killAfter} ms: ${'ready' in result ? 'ready' : `exit ${result.exit}`}`);
      if (!('ready' in result)) {
        expect(result.exit).not.toBe(0);
        expect(result.output).toMatch(/^error: /m);
      }
      // With the staging directory, a killed first start leaves nothing a later one trips on.
      expect('ready' in result).toBe(true);
    }
    process.stdout.write(`first start killed after: ${results.join(', ')}\n`);
  });

  it('a damaged database makes the start exit non-zero with a clear message, not hang', async () => {
    const dataDir = tempDir();
    const ok = serveProcess(dataDir);
    expect('ready' in (await ok.outcome())).toBe(true);
    ok.child.kill('SIGTERM');
    await ok.exited;
    writeFileSync(join(dataDir, 'db', 'global', 'pg_control'), 'not a control file');
    const result = await serveProcess(dataDir).outcome();
    if ('ready' in result) throw new Error('a damaged database started');
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
