import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFromPrivate } from '@trellis/crypto';
import { OVERLAY_PREFIX } from '@trellis/proto';
import { writeFileAtomic } from '../src/state/atomic-file';
import { type Enrollment, type SavedNetmap, STATE_FILES, StateStore } from '../src/state/state-store';

const mode = (p: string) => statSync(p).mode & 0o777;

/** An enrollment as the agent saves it; tests change what they are about. */
function enrollmentOf(publicKey: string, more: Partial<Enrollment> = {}): Enrollment {
  return {
    deviceId: '6f1c2a7e-7d1f-4c36-9a51-1f2f0c3b9d11',
    brokerUrls: ['https://127.0.0.1:8443/'],
    brokerPublicKey: publicKey,
    trust: {},
    publicKey,
    name: 'alpha',
    dnsName: 'alpha.acme.trellis.test',
    address: '100.64.0.1',
    accountName: 'acme',
    overlayPrefix: OVERLAY_PREFIX,
    enrolledAt: '2025-06-01T00:00:00.000Z',
    wantUp: true,
    ...more,
  };
}

describe('StateStore', () => {
  let dir: string;
  let store: StateStore;
  beforeEach(async () => {
    dir = join(mkdtempSync(join(tmpdir(), 'trellis-state-')), 'state');
    store = new StateStore(dir);
    await store.init();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the state directory 0700 and the private key 0600, once', async () => {
    expect(mode(dir)).toBe(0o700);
    const first = await store.loadOrCreateKeyPair();
    const keyFile = join(dir, STATE_FILES.privateKey);
    expect(mode(keyFile)).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(first.privateKey);
    expect(publicKeyFromPrivate(first.privateKey)).toBe(first.publicKey);
    const second = await store.loadOrCreateKeyPair();
    expect(second).toEqual(first);
  });

  it('saves and loads enrollment and netmap, each 0600, no temporary files left', async () => {
    const keys = await store.loadOrCreateKeyPair();
    const enrollment: Enrollment = {
      deviceId: '6f1c2a7e-7d1f-4c36-9a51-1f2f0c3b9d11',
      brokerUrls: ['https://127.0.0.1:8443/', 'https://broker2.example:8443/'],
      brokerPublicKey: keys.publicKey,
      trust: { fingerprint: 'AB'.repeat(32) },
      publicKey: keys.publicKey,
      name: 'alpha',
      dnsName: 'alpha.acme.trellis.test',
      address: '100.64.0.1',
      accountName: 'acme',
      overlayPrefix: OVERLAY_PREFIX,
      enrolledAt: new Date().toISOString(),
      wantUp: true,
    };
    const netmap: SavedNetmap = {
      serial: 7,
      self: {
        id: enrollment.deviceId,
        name: 'alpha',
        dnsName: 'alpha.acme.trellis.test',
        address: '100.64.0.1',
        accountName: 'acme',
        overlayPrefix: OVERLAY_PREFIX,
      },
      peers: [],
      access: [],
      virtual: [],
      savedAt: new Date().toISOString(),
    };
    expect(await store.loadEnrollment()).toBeNull();
    expect(await store.loadNetmap()).toBeNull();
    await store.saveEnrollment(enrollment);
    await store.saveNetmap(netmap);
    expect(await store.loadEnrollment()).toEqual(enrollment);
    expect(await store.loadNetmap()).toEqual(netmap);
    expect(mode(join(dir, STATE_FILES.enrollment))).toBe(0o600);
    expect(mode(join(dir, STATE_FILES.netmap))).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(
      [STATE_FILES.enrollment, STATE_FILES.netmap, STATE_FILES.privateKey].sort(),
    );
    await store.forgetEnrollment();
    expect(await store.loadEnrollment()).toBeNull();
    expect(await store.loadNetmap()).toBeNull();
    expect(readdirSync(dir)).toEqual([STATE_FILES.privateKey]);
  });

  it('reads an enrollment of an agent before several brokers (brokerUrl only) and rewrites it', async () => {
    const keys = await store.loadOrCreateKeyPair();
    const { brokerUrls, ...rest } = enrollmentOf(keys.publicKey, {
      trust: { caFile: '/etc/trellis/broker.pem' },
      wantUp: false,
    });
    const brokerUrl = brokerUrls[0]!;
    const old = { ...rest, brokerUrl };
    const file = join(dir, STATE_FILES.enrollment);
    writeFileSync(file, JSON.stringify(old), { mode: 0o600 });
    const migrated = { ...rest, brokerUrls: [brokerUrl] };
    expect(await store.loadEnrollment()).toEqual(migrated);
    // Rewritten in the new form, still with `brokerUrl` (the first URL) for an older trellisd.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ ...migrated, brokerUrl });
    expect(mode(file)).toBe(0o600);
    expect(await store.loadEnrollment()).toEqual(migrated);
  });

  it('keeps the first URL as brokerUrl when saving several', async () => {
    const keys = await store.loadOrCreateKeyPair();
    const e = enrollmentOf(keys.publicKey, {
      brokerUrls: ['https://b1.example:8443/', 'https://b2.example:8443/'],
      trust: { fingerprints: ['AB'.repeat(32), 'CD'.repeat(32)] },
    });
    await store.saveEnrollment(e);
    const onDisk = JSON.parse(readFileSync(join(dir, STATE_FILES.enrollment), 'utf8'));
    expect(onDisk.brokerUrl).toBe('https://b1.example:8443/');
    expect(onDisk.brokerUrls).toEqual(e.brokerUrls);
    expect(await store.loadEnrollment()).toEqual(e);
  });

  it('refuses an enrollment file without any broker URL, saying so', async () => {
    const keys = await store.loadOrCreateKeyPair();
    writeFileSync(
      join(dir, STATE_FILES.enrollment),
      JSON.stringify({ ...enrollmentOf(keys.publicKey), brokerUrls: undefined }),
    );
    await expect(store.loadEnrollment()).rejects.toThrow(
      /enrollment.json is invalid: neither brokerUrls nor brokerUrl is set/,
    );
  });

  it('refuses a corrupted state file with a clear error', async () => {
    writeFileSync(join(dir, STATE_FILES.netmap), JSON.stringify({ serial: 'x' }));
    await expect(store.loadNetmap()).rejects.toThrow(/netmap.json is invalid/);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the whole file by rename: readers see old or new, never a mix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-atomic-'));
    const file = join(dir, 'f.json');
    writeFileSync(file, 'old', { mode: 0o644 });
    const inodeBefore = statSync(file).ino;
    await writeFileAtomic(file, 'new content');
    expect(readFileSync(file, 'utf8')).toBe('new content');
    // A new inode proves rename replaced the file rather than writing into it in place.
    expect(statSync(file).ino).not.toBe(inodeBefore);
    expect(mode(file)).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['f.json']);
    rmSync(dir, { recursive: true });
  });

  it('leaves the old file intact and no temporary file when the write fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-atomic-'));
    const file = join(dir, 'sub', 'missing-dir.json');
    await expect(writeFileAtomic(file, 'x')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true });
  });
});
