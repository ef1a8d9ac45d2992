import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair, publicKeyFromPrivate } from '@trellis/crypto';
import { NetmapPeer, NetmapSelf, NetmapVirtual, PeerAccess } from '@trellis/proto';
import { z } from 'zod';
import { accessFromWire, accessToWire, type Netmap } from '../control/netmap-tracker';
import { clampPrivateKey } from '../wireguard/keys';
import { syncDir, writeFileAtomic } from './atomic-file';
import { type Enrollment, enrollmentFileContent, parseEnrollmentFile } from './enrollment';

export { Enrollment } from './enrollment';

export const SavedNetmap = z.object({
  serial: z.number().int().nonnegative(),
  self: NetmapSelf,
  peers: z.array(NetmapPeer),
  /** Absent from files saved before access control: nothing may come in until the broker's snapshot. */
  access: z.array(PeerAccess).default([]),
  /** Absent from files saved before virtual devices: none until the broker's snapshot. */
  virtual: z.array(NetmapVirtual).default([]),
  savedAt: z.string(),
});
export type SavedNetmap = z.infer<typeof SavedNetmap>;

/** The netmap as saved (so a restart without the broker brings the same mesh up). */
export function savedNetmapOf(netmap: Netmap, now = new Date()): SavedNetmap {
  return {
    serial: netmap.serial,
    self: netmap.self,
    peers: netmap.peers,
    access: accessToWire(netmap.access),
    virtual: netmap.virtual,
    savedAt: now.toISOString(),
  };
}

export function netmapFromSaved(saved: SavedNetmap): Netmap {
  return {
    serial: saved.serial,
    self: saved.self,
    peers: saved.peers,
    access: accessFromWire(saved.access),
    virtual: saved.virtual,
  };
}

export const STATE_FILES = {
  privateKey: 'private.key',
  /** A rotation's new key until the broker's answer makes it private.key (see DeviceKeys). */
  pendingKey: 'private.key.pending',
  enrollment: 'enrollment.json',
  netmap: 'netmap.json',
} as const;

/** Everything the agent keeps in its state directory (0700); every file 0600, written atomically. */
export class StateStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }

  /** The device's WireGuard key pair, generated on first use. The private half never leaves this file. */
  async loadOrCreateKeyPair(): Promise<KeyPair> {
    const file = join(this.dir, STATE_FILES.privateKey);
    const existing = await readOptional(file);
    if (existing !== null) {
      const privateKey = existing.trim();
      return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
    }
    // Stored clamped, as `wg genkey` does, so it reads back from WireGuard unchanged.
    const generated = generateKeyPair();
    const pair = { privateKey: clampPrivateKey(generated.privateKey), publicKey: generated.publicKey };
    await writeFileAtomic(file, `${pair.privateKey}\n`);
    return pair;
  }

  /** A key rotation's new key pair (clamped, as the device key), written before the broker hears of it. */
  async createPendingKey(): Promise<KeyPair> {
    const generated = generateKeyPair();
    const pair = { privateKey: clampPrivateKey(generated.privateKey), publicKey: generated.publicKey };
    await writeFileAtomic(join(this.dir, STATE_FILES.pendingKey), `${pair.privateKey}\n`);
    return pair;
  }

  async loadPendingKey(): Promise<KeyPair | null> {
    const text = await readOptional(join(this.dir, STATE_FILES.pendingKey));
    if (text === null) return null;
    const privateKey = text.trim();
    return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
  }

  /** The pending key becomes the device key: one rename, so a crash leaves one or the other. */
  async commitPendingKey(): Promise<void> {
    await rename(join(this.dir, STATE_FILES.pendingKey), join(this.dir, STATE_FILES.privateKey));
    await syncDir(this.dir);
  }

  async dropPendingKey(): Promise<void> {
    await rm(join(this.dir, STATE_FILES.pendingKey), { force: true });
    await syncDir(this.dir);
  }

  /** The enrollment; a file of an older agent (one `brokerUrl`) is rewritten in the new form. */
  async loadEnrollment(): Promise<Enrollment | null> {
    const file = join(this.dir, STATE_FILES.enrollment);
    const text = await readOptional(file);
    if (text === null) return null;
    const parsed = parseEnrollmentFile(JSON.parse(text));
    if (!parsed.ok) throw new Error(`${file} is invalid: ${parsed.error}`);
    // Best effort: the old form still reads, so a failed rewrite must not cost the enrollment.
    if (parsed.migrated) await this.saveEnrollment(parsed.enrollment).catch(() => undefined);
    return parsed.enrollment;
  }

  saveEnrollment(e: Enrollment): Promise<void> {
    return writeFileAtomic(join(this.dir, STATE_FILES.enrollment), enrollmentFileContent(e));
  }

  loadNetmap(): Promise<SavedNetmap | null> {
    return this.loadJson(STATE_FILES.netmap, SavedNetmap);
  }

  saveNetmap(n: SavedNetmap): Promise<void> {
    return writeFileAtomic(join(this.dir, STATE_FILES.netmap), `${JSON.stringify(n)}\n`);
  }

  /** After the broker removed this device: forget enrollment and peers, keep the key. */
  async forgetEnrollment(): Promise<void> {
    await rm(join(this.dir, STATE_FILES.enrollment), { force: true });
    await rm(join(this.dir, STATE_FILES.netmap), { force: true });
  }

  private async loadJson<T>(name: string, schema: z.ZodType<T>): Promise<T | null> {
    const text = await readOptional(join(this.dir, name));
    if (text === null) return null;
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${join(this.dir, name)} is invalid: ${parsed.error.message}`);
    return parsed.data;
  }
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
