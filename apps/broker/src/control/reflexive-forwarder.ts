import type { AccountPaths } from './account-paths';

/** What this instance's reflectors saw (BrokerReflectors). */
export interface ReflexiveSource {
  seenSince(publicKey: string, since: number): readonly string[] | null;
  onObservation(fn: (publicKey: string) => void): () => void;
}

interface Attached {
  key: string | undefined;
  since: number;
  /** The reflexive endpoints last forwarded to the owner, joined. */
  told?: string;
}

/**
 * Takes what this instance's reflectors see of devices connected here to the account's pair paths:
 * to the core when this instance owns the account, else forwarded to the owner (a `reflexive-seen`
 * input on the bus). Reflector observations carry WireGuard keys, so it keeps each attached device's.
 */
export class ReflexiveForwarder {
  private readonly attachedHere = new Map<string, Attached>();
  private readonly deviceOfKey = new Map<string, string>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly source: ReflexiveSource | undefined,
    /** The pair paths of a device's account, if the device is connected here. */
    private readonly pathsOf: (deviceId: string) => AccountPaths | null | undefined,
  ) {}

  start(): void {
    this.unsubscribe = this.source?.onObservation((key) => this.observed(key));
  }

  attached(deviceId: string, publicKey: string | undefined, now: number): void {
    this.detached(deviceId);
    this.attachedHere.set(deviceId, { key: publicKey, since: now });
    if (publicKey) this.deviceOfKey.set(publicKey, deviceId);
  }

  detached(deviceId: string): void {
    const key = this.attachedHere.get(deviceId)?.key;
    this.attachedHere.delete(deviceId);
    if (key && this.deviceOfKey.get(key) === deviceId) this.deviceOfKey.delete(key);
  }

  /** Whether the device with this WireGuard key is connected to this instance. */
  holdsKey(publicKey: string): boolean {
    return this.deviceOfKey.has(publicKey);
  }

  /** Where this instance's reflectors saw a connected device since it attached here (null: nowhere). */
  seenHere(deviceId: string): readonly string[] | null {
    const a = this.attachedHere.get(deviceId);
    const seen = a?.key ? this.source?.seenSince(a.key, a.since) : null;
    return seen && seen.length > 0 ? seen.slice(0, 16) : null;
  }

  /**
   * The owner is another instance: it hears where this instance's reflectors saw the device since
   * it came online here — on a change, or all of it (`again`) when a new owner asks.
   */
  forward(deviceId: string, again: boolean): void {
    const paths = this.pathsOf(deviceId);
    const a = this.attachedHere.get(deviceId);
    if (!paths || paths.active || !a) return;
    const seen = this.seenHere(deviceId);
    if (!seen) return;
    const told = seen.join(' ');
    if (!again && a.told === told) return;
    a.told = told;
    paths.input({ kind: 'reflexive-seen', id: deviceId, endpoints: [...seen] }, true);
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private observed(publicKey: string): void {
    const id = this.deviceOfKey.get(publicKey);
    const paths = id === undefined ? undefined : this.pathsOf(id);
    if (id === undefined || !paths) return;
    if (paths.active) paths.active.reflexiveObserved(id, publicKey);
    else this.forward(id, false);
  }
}
