import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceId, DnsLabel, KeyChange, OverlayAddress, WgKey } from '@trellis/proto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from '../state/atomic-file';
import { keyChangeProof } from './key-change-proof';

/**
 * The agent's memory of which WireGuard key each overlay address had, so a broker cannot swap a
 * peer's key unnoticed. First contact is trusted (nothing to compare with); after that a different
 * key needs proof: the old key's signature (rotated) or an admin re-key, which is recorded so
 * status can show it.
 *
 * Pins are never dropped because a peer left the netmap: a hostile broker could remove a device
 * and re-add it with its own key. Addresses are reused legitimately, though: the broker holds a
 * removed device's address back for a grace period (given back only to the same key), then may
 * hand it to a new device. So a different device id at a pinned address is a new pin only once
 * the old pin has not been seen for the grace period; the same device id always needs proof.
 * The cost: a device kept out of this agent's netmaps for longer than the grace loses protection.
 */

export const PEER_PINS_FILE = 'peer-pins.json';
/** The broker's DEFAULT_ADDRESS_GRACE_SECONDS (7 days). Longer here only delays legitimate reuse. */
export const ADDRESS_GRACE_MS = 7 * 86_400_000;
/** seenAt moves at most this often, so steady netmaps cause no writes (reuse may come this much early). */
const SEEN_RESOLUTION_MS = 3_600_000;

const Iso = z.string().datetime();
const KeyEvent = z.object({
  kind: z.enum(['rotated', 'rekeyed', 'replaced', 'moved']),
  /** The key before (absent for `moved`: the key stayed, the address changed). */
  previousKey: WgKey.optional(),
  /** The pinned address the key came from (`moved` only). */
  fromAddress: OverlayAddress.optional(),
  /** When it happened: the admin's time for a re-key, else acceptedAt. */
  at: Iso,
  acceptedAt: Iso,
});
const Pin = z.object({
  address: OverlayAddress,
  deviceId: DeviceId,
  name: DnsLabel,
  key: WgKey,
  pinnedAt: Iso,
  /** Last netmap that listed it with this key (to SEEN_RESOLUTION_MS). */
  seenAt: Iso,
  lastChange: KeyEvent.optional(),
});
// z.object (not strict): a file written by a newer agent still loads instead of being set aside.
const PinFile = z.object({ version: z.literal(1), pins: z.array(Pin) });
const PeerInput = z.object({
  id: DeviceId,
  name: DnsLabel,
  address: OverlayAddress,
  publicKey: WgKey,
  keyChange: KeyChange.optional(),
});

export type KeyEvent = z.infer<typeof KeyEvent>;
type Pin = z.infer<typeof Pin>;
/** The fields of a NetmapPeer that pinning looks at. */
export type PinnedPeer = z.infer<typeof PeerInput>;

export type PinVerdict =
  | {
      kind: 'new';
      /** A stale pin of another device at this address, replaced (address reuse). */
      replaces?: { deviceId: string; name: string; key: string };
      /** The address whose stale pin held this key (a re-enrolled device given another address). */
      movedFrom?: string;
    }
  | { kind: 'same' }
  | { kind: 'rotated'; previousKey: string }
  | { kind: 'rekeyed'; previousKey: string; at: string }
  | { kind: 'refused'; pinnedKey: string; offeredKey: string; reason: string };

export interface Refusal {
  address: string;
  deviceId: string;
  name: string;
  pinnedKey: string;
  offeredKey: string;
  reason: string;
  /** When this key was first refused for this address. */
  since: string;
}

export interface KeyChangeRecord extends KeyEvent {
  address: string;
  deviceId: string;
  name: string;
  key: string;
}

export interface CorruptPinFile {
  /** Where the unreadable file was moved (null if moving it failed too). */
  copy: string | null;
  error: string;
}

export interface PeerPinsOptions {
  addressGraceMs?: number;
  now?: () => number;
  log?: Pick<Logger, 'warn'>;
}

export class PeerPins {
  readonly file: string;
  /** Set when the file on disk could not be read: pins started empty. */
  recovered: CorruptPinFile | null = null;
  private readonly pins = new Map<string, Pin>();
  private readonly addressOfKey = new Map<string, string>();
  private readonly refused = new Map<string, Refusal>();
  private readonly graceMs: number;
  private readonly now: () => number;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly options: PeerPinsOptions,
  ) {
    this.file = join(dir, PEER_PINS_FILE);
    this.graceMs = options.addressGraceMs ?? ADDRESS_GRACE_MS;
    this.now = options.now ?? Date.now;
  }

  /** Loads the pins; a corrupt file is set aside as `<file>.corrupt-<time>` and reported, never thrown. */
  static async open(dir: string, options: PeerPinsOptions = {}): Promise<PeerPins> {
    const pins = new PeerPins(dir, options);
    await pins.load();
    return pins;
  }

  /** What the netmap's claim about this peer means against the pins; a refusal is remembered for status. */
  check(peer: PinnedPeer): PinVerdict {
    const verdict = this.judge(peer);
    if (verdict.kind !== 'refused') {
      this.refused.delete(peer.address);
      return verdict;
    }
    const earlier = this.refused.get(peer.address);
    const since = earlier?.offeredKey === peer.publicKey ? earlier.since : this.iso();
    const { pinnedKey, offeredKey, reason } = verdict;
    this.refused.set(peer.address, {
      address: peer.address,
      deviceId: peer.id,
      name: peer.name,
      pinnedKey,
      offeredKey,
      reason,
      since,
    });
    return verdict;
  }

  /**
   * Records what check allowed. The verdict is judged again, so a stale or made-up one cannot
   * force a pin. Changes are written by flush().
   */
  accept(peer: PinnedPeer, verdict: PinVerdict): void {
    const fresh = this.judge(peer);
    if (verdict.kind === 'refused' || fresh.kind !== verdict.kind)
      throw new Error(`cannot accept a ${verdict.kind} verdict for ${peer.address} (now ${fresh.kind})`);
    const now = this.iso();
    const pin = this.pins.get(peer.address);
    if (fresh.kind === 'same' && pin) {
      const stale = this.now() - Date.parse(pin.seenAt) >= SEEN_RESOLUTION_MS;
      if (!stale && pin.deviceId === peer.id && pin.name === peer.name) return;
      this.setPin({ ...pin, deviceId: peer.id, name: peer.name, seenAt: stale ? now : pin.seenAt });
      return;
    }
    let lastChange: KeyEvent | undefined;
    if (fresh.kind === 'new') {
      if (fresh.movedFrom !== undefined) this.deletePin(fresh.movedFrom);
      if (fresh.replaces)
        lastChange = { kind: 'replaced', previousKey: fresh.replaces.key, at: now, acceptedAt: now };
      else if (fresh.movedFrom !== undefined)
        lastChange = { kind: 'moved', fromAddress: fresh.movedFrom, at: now, acceptedAt: now };
    } else if (fresh.kind === 'rotated') {
      lastChange = { kind: 'rotated', previousKey: fresh.previousKey, at: now, acceptedAt: now };
    } else if (fresh.kind === 'rekeyed') {
      lastChange = { kind: 'rekeyed', previousKey: fresh.previousKey, at: fresh.at, acceptedAt: now };
    }
    const base = { address: peer.address, deviceId: peer.id, name: peer.name, key: peer.publicKey };
    this.setPin({ ...base, pinnedAt: now, seenAt: now, ...(lastChange ? { lastChange } : {}) });
  }

  /** Peers currently refused, for status and metrics. */
  refusals(): Refusal[] {
    return [...this.refused.values()];
  }

  /** Drops refusals of peers no longer in the netmap (their pins stay). */
  pruneRefusals(present: Iterable<string>): void {
    const keep = new Set(present);
    for (const address of this.refused.keys()) if (!keep.has(address)) this.refused.delete(address);
  }

  /** The last key change of every pinned address that had one, newest first, for status. */
  keyChanges(): KeyChangeRecord[] {
    const out: KeyChangeRecord[] = [];
    for (const p of this.pins.values())
      if (p.lastChange)
        out.push({ ...p.lastChange, address: p.address, deviceId: p.deviceId, name: p.name, key: p.key });
    return out.sort((a, b) => b.acceptedAt.localeCompare(a.acceptedAt));
  }

  /**
   * Forgets an address's pin: for an explicit local operator command only. Nothing the broker
   * says (a removal included) may call this, or a remove-then-re-add would swap the key.
   */
  forget(address: string): boolean {
    this.refused.delete(address);
    return this.deletePin(address);
  }

  get size(): number {
    return this.pins.size;
  }

  /** Writes the pins if anything changed since the last write: one write per netmap, not per peer. */
  flush(): Promise<void> {
    const run = this.writing.then(() => this.write());
    this.writing = run.catch(() => undefined);
    return run;
  }

  private judge(input: PinnedPeer): PinVerdict {
    const parsed = PeerInput.safeParse(input);
    const pin = this.pins.get(input.address);
    const refuse = (reason: string, pinnedKey = pin?.key ?? ''): PinVerdict => ({
      kind: 'refused',
      pinnedKey,
      offeredKey: input.publicKey,
      reason,
    });
    // Refused rather than thrown: one malformed peer must not stop the rest of the netmap.
    if (!parsed.success) return refuse(`malformed peer: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const peer = parsed.data;

    // One key, one address (WireGuard routes by key). A key leaves its pinned address only as a
    // re-enrolled device would: after that address went unseen for the grace period.
    const holder = this.addressOfKey.get(peer.publicKey);
    const holderPin = holder === undefined || holder === peer.address ? undefined : this.pins.get(holder);
    if (holderPin && this.live(holderPin))
      return refuse(
        `key is pinned to ${holderPin.address} (${holderPin.name}), seen ${holderPin.seenAt}`,
        pin?.key ?? holderPin.key,
      );
    const movedFrom = holderPin?.address;
    if (!pin) return movedFrom === undefined ? { kind: 'new' } : { kind: 'new', movedFrom };
    if (pin.key === peer.publicKey) return { kind: 'same' };

    const change = peer.keyChange;
    switch (keyChangeProof(pin.key, pin.deviceId, peer)) {
      case 'rekeyed':
        if (change?.kind === 'rekeyed') return { kind: 'rekeyed', previousKey: pin.key, at: change.at };
        break;
      case 'rekey-of-another-device':
        return refuse(`re-key of ${pin.name} (${pin.deviceId}) offered for another device ${peer.id}`);
      case 'rotated':
        return { kind: 'rotated', previousKey: pin.key };
      case 'unsigned':
        return refuse('key rotation is not signed by the pinned key');
      case null:
        break;
    }
    if (peer.id !== pin.deviceId && !this.live(pin)) {
      const replaces = { deviceId: pin.deviceId, name: pin.name, key: pin.key };
      return movedFrom === undefined ? { kind: 'new', replaces } : { kind: 'new', replaces, movedFrom };
    }
    if (peer.id !== pin.deviceId)
      return refuse(`address pinned to ${pin.name} (${pin.deviceId}), seen ${pin.seenAt}, within the grace`);
    if (change) return refuse(`key change proof names ${change.previousKey}, not the pinned key`);
    return refuse('key changed without proof');
  }

  /** Seen recently enough that its address (and key) cannot have been released by the broker. */
  private live(pin: Pin): boolean {
    return this.now() - Date.parse(pin.seenAt) < this.graceMs;
  }

  private setPin(pin: Pin): void {
    const old = this.pins.get(pin.address);
    if (old && this.addressOfKey.get(old.key) === pin.address) this.addressOfKey.delete(old.key);
    this.pins.set(pin.address, pin);
    this.addressOfKey.set(pin.key, pin.address);
    this.dirty = true;
  }

  private deletePin(address: string): boolean {
    const old = this.pins.get(address);
    if (!old) return false;
    this.pins.delete(address);
    if (this.addressOfKey.get(old.key) === address) this.addressOfKey.delete(old.key);
    this.dirty = true;
    return true;
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      return this.setAside(String(err));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return this.setAside(`not JSON: ${String(err)}`);
    }
    const parsed = PinFile.safeParse(json);
    if (!parsed.success) return this.setAside(parsed.error.message);
    for (const pin of parsed.data.pins) this.setPin(pin);
    this.dirty = false;
  }

  /** Moves the bad file out of the way (kept for inspection) and starts with no pins. */
  private async setAside(error: string): Promise<void> {
    const stamp = this.iso().replace(/[-:]/g, '');
    let copy: string | null = `${this.file}.corrupt-${stamp}`;
    try {
      await rename(this.file, copy);
    } catch {
      copy = null;
    }
    this.recovered = { copy, error };
    this.options.log?.warn(
      { file: this.file, copy, error },
      'peer pin file unreadable: set aside, every peer will be pinned afresh',
    );
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const pins = [...this.pins.values()].sort((a, b) => a.address.localeCompare(b.address));
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, pins }, null, 1)}\n`);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
