import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateReflectorKey } from '../src';

describe('loadOrCreateReflectorKey', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reflector-key-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a 32-byte key kept 0600, and returns the same key on the next start', () => {
    const file = join(dir, 'reflector.key');
    const key = loadOrCreateReflectorKey(file);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${key}\n`);
    expect(loadOrCreateReflectorKey(file)).toBe(key);
    expect(loadOrCreateReflectorKey(join(dir, 'other.key'))).not.toBe(key);
  });
});
