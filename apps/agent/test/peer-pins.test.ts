import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair, signKeyRotation } from '@trellis/crypto';
import * as atomicFile from '../src/state/atomic-file';
import {
  ADDRESS_GRACE_MS,
  PEER_PINS_FILE,
  PeerPins,
  type PinnedPeer,
  type PinVerdict,
} from '../src/trust/peer-pins';

const HOUR = 3_600_000;

describe('PeerPins', () => {
  let dir: string;
  let clock: number;
  const now = () => clock;
  const open = (more = {}) => PeerPins.open(dir, { now, ...more });
  const file = () => join(dir, PEER_PINS_FILE);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-pins-'));
    clock = Date.parse('2025-06-01T00:00:00.000Z');
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  function peer(key: KeyPair, more: Partial<PinnedPeer> = {}): PinnedPeer {
    return { id: DEVICE, name: 'laptop', address: '100.64.0.7', publicKey: key.publicKey, ...more };
  }

  /** check + accept, as the agent does for each peer of a netmap. */
  function admit(pins: PeerPins, p: PinnedPeer): PinVerdict {
    const verdict = pins.check(p);
    if (verdict.kind !== 'refused') pins.accept(p, verdict);
    return verdict;
  }

  const DEVICE = randomUUID();
  const old = generateKeyPair();
  const next = generateKeyPair();

  it('pins a new peer, then finds it the same, also after a reload; file mode 0600', async () => {
    const pins = await open();
    expect(admit(pins, peer(old))).toEqual({ kind: 'new' });
    expect(pins.check(peer(old))).toEqual({ kind: 'same' });
    await pins.flush();
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    const again = await open();
    expect(again.recovered).toBeNull();
    expect(again.size).toBe(1);
    expect(again.check(peer(old))).toEqual({ kind: 'same' });
  });

  it('refuses a swapped key, lists it, and still refuses it after a reload', async () => {
    const pins = await open();
    admit(pins, peer(old));
    await pins.flush();
    const verdict = pins.check(peer(next));
    expect(verdict).toMatchObject({ kind: 'refused', pinnedKey: old.publicKey, offeredKey: next.publicKey });
    expect(pins.refusals()).toEqual([
      expect.objectContaining({ address: '100.64.0.7', name: 'laptop', offeredKey: next.publicKey }),
    ]);
    expect(() => pins.accept(peer(next), { kind: 'same' })).toThrow(/cannot accept/);
    expect(() => pins.accept(peer(next), verdict)).toThrow(/cannot accept/);
    await pins.flush();
    const again = await open();
    expect(again.check(peer(next)).kind).toBe('refused');
    expect(again.check(peer(old)).kind).toBe('same');
    expect(again.refusals()).toEqual([]); // the real key came back
  });

  it('accepts a rotation signed by the pinned key and moves the pin', async () => {
    const pins = await open();
    admit(pins, peer(old));
    const rotation = {
      deviceId: DEVICE,
      address: '100.64.0.7',
      previousKey: old.publicKey,
      newKey: next.publicKey,
    };
    const signature = signKeyRotation(old.privateKey, rotation);
    const rotated = peer(next, { keyChange: { kind: 'rotated', previousKey: old.publicKey, signature } });
    expect(admit(pins, rotated)).toEqual({ kind: 'rotated', previousKey: old.publicKey });
    expect(pins.check(rotated)).toEqual({ kind: 'same' });
    await pins.flush();
    const again = await open();
    expect(again.check(peer(next))).toEqual({ kind: 'same' });
    expect(again.check(peer(old)).kind).toBe('refused'); // no going back without proof
    expect(again.keyChanges()).toEqual([
      expect.objectContaining({ kind: 'rotated', address: '100.64.0.7', previousKey: old.publicKey }),
    ]);
  });

  it('refuses rotations not signed by the pinned key, or signed for another device', async () => {
    const pins = await open();
    admit(pins, peer(old));
    const thief = generateKeyPair();
    const forged = signKeyRotation(thief.privateKey, {
      deviceId: DEVICE,
      address: '100.64.0.7',
      previousKey: thief.publicKey,
      newKey: thief.publicKey,
    });
    const claim = peer(thief, {
      keyChange: { kind: 'rotated', previousKey: old.publicKey, signature: forged },
    });
    expect(pins.check(claim)).toMatchObject({ kind: 'refused', reason: /not signed/ });

    // A genuine signature, but for another device's rotation, replayed here.
    const elsewhere = signKeyRotation(old.privateKey, {
      deviceId: randomUUID(),
      address: '100.64.0.7',
      previousKey: old.publicKey,
      newKey: next.publicKey,
    });
    const replayed = peer(next, {
      keyChange: { kind: 'rotated', previousKey: old.publicKey, signature: elsewhere },
    });
    expect(pins.check(replayed).kind).toBe('refused');

    // A proof that starts from some other key than the pinned one.
    const wrongStart = peer(next, {
      keyChange: { kind: 'rotated', previousKey: thief.publicKey, signature: forged },
    });
    expect(pins.check(wrongStart)).toMatchObject({ kind: 'refused', reason: /not the pinned key/ });
  });

  it('accepts an admin re-key of the same device and lists it; not for another device', async () => {
    const pins = await open();
    admit(pins, peer(old));
    const at = '2025-05-31T12:00:00.000Z';
    const foreign = peer(next, {
      id: randomUUID(),
      keyChange: { kind: 'rekeyed', previousKey: old.publicKey, at },
    });
    expect(pins.check(foreign)).toMatchObject({ kind: 'refused', reason: /re-key/ });
    const rekeyed = peer(next, { keyChange: { kind: 'rekeyed', previousKey: old.publicKey, at } });
    expect(admit(pins, rekeyed)).toEqual({ kind: 'rekeyed', previousKey: old.publicKey, at });
    expect(pins.keyChanges()).toEqual([
      expect.objectContaining({
        kind: 'rekeyed',
        address: '100.64.0.7',
        name: 'laptop',
        key: next.publicKey,
        previousKey: old.publicKey,
        at,
        acceptedAt: new Date(clock).toISOString(),
      }),
    ]);
    await pins.flush();
    expect((await open()).keyChanges()).toHaveLength(1);
  });

  it('sets a corrupt file aside, reports it and starts empty', async () => {
    writeFileSync(file(), '{"version":1,"pins":[{"address":', { mode: 0o600 });
    const warn = jest.fn();
    const pins = await open({ log: { warn } });
    expect(pins.size).toBe(0);
    expect(pins.recovered?.copy).toMatch(/peer-pins\.json\.corrupt-20250601T000000\.000Z$/);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(readdirSync(dir)).toEqual([`${PEER_PINS_FILE}.corrupt-20250601T000000.000Z`]);
    expect(admit(pins, peer(old)).kind).toBe('new');
    await pins.flush();
    expect((await open()).check(peer(old)).kind).toBe('same');
  });

  it('sets aside a file that parses but fails validation', async () => {
    const bad = {
      version: 1,
      pins: [{ address: '8.8.8.8', deviceId: DEVICE, name: 'x', key: old.publicKey }],
    };
    writeFileSync(file(), JSON.stringify(bad));
    const pins = await open();
    expect(pins.recovered?.error).toBeTruthy();
    expect(pins.size).toBe(0);
    expect(readdirSync(dir).some((f) => f.startsWith(`${PEER_PINS_FILE}.corrupt-`))).toBe(true);
  });

  it('writes once per batch, and not at all when nothing changed', async () => {
    const pins = await open();
    const write = jest.spyOn(atomicFile, 'writeFileAtomic');
    for (let i = 1; i <= 50; i++)
      admit(pins, peer(generateKeyPair(), { id: randomUUID(), address: `100.64.1.${i}` }));
    await Promise.all([pins.flush(), pins.flush()]);
    expect(write).toHaveBeenCalledTimes(1);
    expect(pins.size).toBe(50);

    // Steady netmaps: nothing to write until seenAt is due a refresh.
    admit(pins, peer(old));
    await pins.flush();
    expect(write).toHaveBeenCalledTimes(2);
    admit(pins, peer(old));
    await pins.flush();
    expect(write).toHaveBeenCalledTimes(2);
    clock += 2 * HOUR;
    admit(pins, peer(old));
    await pins.flush();
    expect(write).toHaveBeenCalledTimes(3);
  });

  it('lets a new device reuse an address only after the old pin went unseen for the grace period', async () => {
    const pins = await open();
    admit(pins, peer(old));
    const newcomer = peer(next, { id: randomUUID(), name: 'printer' });
    clock += ADDRESS_GRACE_MS - HOUR;
    expect(pins.check(newcomer)).toMatchObject({ kind: 'refused', reason: /within the grace/ });
    // The old device itself with another key needs proof however long it has been gone.
    expect(pins.check(peer(next)).kind).toBe('refused');
    clock += 2 * HOUR;
    expect(pins.check(peer(next)).kind).toBe('refused');
    const verdict = admit(pins, newcomer);
    expect(verdict).toEqual({
      kind: 'new',
      replaces: { deviceId: DEVICE, name: 'laptop', key: old.publicKey },
    });
    expect(pins.keyChanges()).toEqual([expect.objectContaining({ kind: 'replaced', name: 'printer' })]);
    expect(pins.check(newcomer)).toEqual({ kind: 'same' });
  });

  it('refuses a pinned key at another address while its pin is live; moves it after the grace', async () => {
    const pins = await open();
    admit(pins, peer(old));
    const moved = peer(old, { address: '100.64.0.9' });
    expect(pins.check(moved)).toMatchObject({ kind: 'refused', reason: /pinned to 100\.64\.0\.7/ });
    clock += ADDRESS_GRACE_MS + HOUR;
    expect(admit(pins, moved)).toEqual({ kind: 'new', movedFrom: '100.64.0.7' });
    expect(pins.size).toBe(1);
    expect(pins.check(moved)).toEqual({ kind: 'same' });
    expect(pins.check(peer(next)).kind).toBe('new'); // the old address holds no pin any more
  });

  it('keeps pins of peers that left the netmap; prunes only their refusals; forget drops a pin', async () => {
    const pins = await open();
    admit(pins, peer(old));
    expect(pins.check(peer(next)).kind).toBe('refused');
    pins.pruneRefusals(['100.64.0.99']);
    expect(pins.refusals()).toEqual([]);
    expect(pins.check(peer(next)).kind).toBe('refused'); // the pin stayed
    expect(pins.forget('100.64.0.7')).toBe(true);
    expect(pins.refusals()).toEqual([]);
    expect(pins.check(peer(next)).kind).toBe('new');
  });

  it('refuses a malformed peer instead of throwing', async () => {
    const pins = await open();
    expect(pins.check(peer(old, { address: '8.8.8.8' }))).toMatchObject({
      kind: 'refused',
      reason: /malformed/,
    });
    expect(pins.check(peer(old, { publicKey: 'AAAA' })).kind).toBe('refused');
  });
});
