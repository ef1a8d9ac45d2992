import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from '../src/state/atomic-file';

// `open` stays the real one unless a test makes directories behave as on Windows.
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return { ...actual, open: jest.fn(actual.open) };
});
const realOpen = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises').open;
const open = fsp.open as jest.MockedFunction<typeof fsp.open>;

/** The directories opened, and what Windows does on fsync of one: FlushFileBuffers fails (EPERM). */
function windowsLikeDirectories(): string[] {
  const opened: string[] = [];
  open.mockImplementation(async (path, flags, mode) => {
    const fh = await realOpen(path, flags, mode);
    if (!(await fh.stat()).isDirectory()) return fh;
    opened.push(String(path));
    fh.sync = () =>
      Promise.reject(Object.assign(new Error(`EPERM: operation not permitted, fsync`), { code: 'EPERM' }));
    return fh;
  });
  return opened;
}

/** Runs `body` with process.platform as `platform` (restored after). */
async function as(platform: NodeJS.Platform, body: () => Promise<void>): Promise<void> {
  const before = process.platform;
  Object.defineProperty(process, 'platform', { value: platform, configurable: true });
  try {
    await body();
  } finally {
    Object.defineProperty(process, 'platform', { value: before, configurable: true });
  }
}

describe('writeFileAtomic and syncDir by platform', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-atomic-'));
  });
  afterEach(() => {
    open.mockImplementation(realOpen);
    rmSync(dir, { recursive: true, force: true });
  });

  it('on Windows: the file is replaced and no directory is opened for an fsync that would fail', async () => {
    const opened = windowsLikeDirectories();
    await as('win32', async () => {
      await writeFileAtomic(join(dir, 'private.key'), 'key\n');
      await syncDir(dir);
    });
    expect(readFileSync(join(dir, 'private.key'), 'utf8')).toBe('key\n');
    expect(readdirSync(dir)).toEqual(['private.key']);
    expect(opened).toEqual([]);
  });

  it('elsewhere: the directory is fsynced after the rename (a failing fsync is reported)', async () => {
    const opened = windowsLikeDirectories();
    for (const platform of ['linux', 'darwin'] as const) {
      await as(platform, async () => {
        await expect(writeFileAtomic(join(dir, `${platform}.json`), '{}')).rejects.toMatchObject({
          code: 'EPERM',
        });
      });
    }
    // The rename happened before the directory's fsync: the content is there.
    expect(readFileSync(join(dir, 'linux.json'), 'utf8')).toBe('{}');
    expect(opened).toEqual([dir, dir]);
  });

  it('under the platform this jest project runs as: writes with mode 0600, no temporary file left', async () => {
    const file = join(dir, 'state.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});
