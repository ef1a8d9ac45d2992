import type { NetmapRelay, ReflectorInfo } from '@trellis/proto';
import type { DeviceState } from '../domain/netmap-builder';
import { AccountNetmap, type ResumeRefusal } from '../domain/netmap-builder';
import type { NetmapPolicy } from '../domain/netmap-policy';
import { AccountPolicy } from '../policy/account-policy';
import { inSlices } from '../policy/in-slices';
import type { AccountPaths } from './account-paths';
import type { ControlSession } from './control-session';
import { SerialTracker } from './serial-tracker';

const MAX_WINDOW_MS = 250;
/**
 * Devices only coming online or going offline wait longer before going out, the more devices a
 * flush goes to (PRESENCE_MS_PER_SESSION) and the longer the last flush took (PRESENCE_FLUSH_SHARE:
 * presence alone takes at most about a fifth of the event loop), up to PRESENCE_MAX_MS. A
 * reconnection storm's thousands then go out in a few deltas instead of one per flush window
 * (profiles of 3,000 and 10,000 devices connecting: a third of the broker's CPU went to presence
 * deltas, one small TLS write per device per flush). A small account keeps the short window.
 */
const PRESENCE_MAX_MS = 5_000;
const PRESENCE_MS_PER_SESSION = 0.1;
const PRESENCE_FLUSH_SHARE = 4;

/** How an attached device was brought up to date; `refused`: why the netmap it named could not be resumed. */
export type Attached = { how: 'resumed' } | { how: 'snapshot'; refused?: ResumeRefusal };

/**
 * The connected devices of one account on this instance and the account's netmap. Changes are
 * applied to the netmap at once and sent out as one coalesced delta per device after `coalesceMs`.
 */
export class AccountHub {
  readonly sessions = new Map<string, ControlSession>();
  private timer: NodeJS.Timeout | undefined;
  /** Which changes are applied: stale events are skipped, missed ones make the ControlHub reload. */
  readonly serials: SerialTracker;

  constructor(
    readonly netmap: AccountNetmap,
    private readonly coalesceMs: number,
  ) {
    this.serials = new SerialTracker(netmap.serial);
  }

  static create(
    accountName: string,
    zone: string,
    coalesceMs: number,
    serial: number,
    devices: DeviceState[],
    reflectors: readonly ReflectorInfo[] = [],
    relays: readonly NetmapRelay[] = [],
    policy?: NetmapPolicy,
  ) {
    const netmap = new AccountNetmap(accountName, zone, serial, reflectors, policy);
    for (const d of devices) netmap.upsert(d);
    netmap.setRelays(relays);
    netmap.takeChanges();
    netmap.journal.restart(serial);
    return new AccountHub(netmap, coalesceMs);
  }

  /**
   * Where a device's netmap stands after the frame it is sent now: every serial up to the watermark
   * is applied (and sent), under this policy version. A device sends it back when it reconnects.
   */
  private resumeToken(): string {
    return `${this.serials.watermark}.${this.policyVersion}`;
  }

  /** The journal cursor of a token this hub can resume from (same policy), else undefined. */
  private cursorOf(token: string): number | undefined {
    const m = /^(\d{1,15})\.(\d{1,15})$/.exec(token);
    if (!m || Number(m[2]) !== this.policyVersion) return undefined;
    return Number(m[1]);
  }

  /** Set by the ControlHub: who decides the account's pair paths (and the decider, when here). */
  paths: AccountPaths | null = null;

  setReflectors(reflectors: readonly ReflectorInfo[]): void {
    this.netmap.setReflectors(reflectors);
    this.schedule();
  }

  /** The account's relay list changed: every connected device gets it in its self. */
  setRelays(relays: readonly NetmapRelay[]): void {
    this.netmap.setRelays(relays);
    this.schedule();
  }

  /**
   * A new version of the access policy (fed every device already): the devices whose view changed
   * get a delta to it at once. Pending changes go out first, under the policy they were made with.
   * Returns how many connected devices got one.
   */
  setPolicy(policy: NetmapPolicy, serial: number, version: number): number {
    this.flush();
    const bodies = this.netmap.setPolicy(policy);
    if (serial > this.netmap.serial) this.netmap.serial = serial;
    // Netmaps held under another policy are not resumed: the token names the version.
    this.policyVersion = version;
    const resume = this.resumeToken();
    let sent = 0;
    for (const session of this.sessions.values()) {
      const body = bodies.get(session.deviceId);
      if (!body) continue;
      session.serial += 1;
      session.send(AccountNetmap.policyFrame(body, session.serial, resume), 'delta');
      sent += 1;
    }
    this.schedule();
    return sent;
  }

  /** Version of the access policy the netmap filters with (0: the default, allow-all). */
  policyVersion = 0;

  /**
   * `stored` built over the hub's devices, its relations computed in slices (the hub keeps serving
   * meanwhile; those no changed rule touches are taken from the policy in force); undefined when
   * the hub already has that version or a newer one. Apply with usePolicy.
   */
  async preparePolicy(stored: { version: number; text: string }): Promise<AccountPolicy | undefined> {
    if (stored.version <= this.policyVersion) return undefined;
    const { netmap } = this;
    const policy = AccountPolicy.build(stored.version, stored.text, netmap.states(), netmap.policyInForce);
    await inSlices(policy.computeRelations());
    return policy;
  }

  /**
   * A policy built ahead (its relations computed while the hub went on): brought up to the hub's
   * devices and applied, unless the hub has its version or a newer one.
   */
  usePolicy(policy: AccountPolicy, serial: number): boolean {
    if (policy.version <= this.policyVersion) return false;
    policy.sync(this.netmap.states());
    // policyVersion is set only once it is in force: a switch that threw is tried again.
    this.setPolicy(policy, serial, policy.version);
    return true;
  }

  /** A change from the bus: applied unless the hub has it already or has a newer one of the device. */
  applyChange(
    change: { kind: 'upsert'; device: DeviceState } | { kind: 'remove'; deviceId: string },
    serial: number,
  ): void {
    const id = change.kind === 'upsert' ? change.device.id : change.deviceId;
    if (!this.serials.accept(serial, id)) return;
    if (change.kind === 'upsert') this.upsert(change.device, serial);
    else this.remove(id, serial);
  }

  /**
   * The account as the database has it at `serial` (the hub missed a change): every difference
   * becomes an ordinary change, so devices get deltas. Returns the ids removed meanwhile. (A newer
   * policy in the same read is the caller's: see SerialCheck.)
   */
  reconcile(devices: readonly DeviceState[], serial: number): string[] {
    const present = new Set(devices.map((d) => d.id));
    const removed = [...this.netmap.states()].map((d) => d.id).filter((id) => !present.has(id));
    for (const id of removed) this.remove(id, serial);
    for (const d of devices) this.upsert(d, serial);
    this.serials.reloaded(serial);
    return removed;
  }

  upsert(device: DeviceState, serial: number): void {
    const before = this.netmap.get(device.id);
    const beforeView = before && JSON.stringify(this.netmap.punchView(device.id));
    this.netmap.upsert(device, serial);
    this.schedule();
    if (before) this.paths?.changed(before, beforeView);
    else this.paths?.added(device);
  }

  remove(deviceId: string, serial: number): void {
    const before = this.netmap.get(deviceId);
    this.netmap.remove(deviceId, serial);
    if (before) this.paths?.removed(before);
    this.schedule();
  }

  /**
   * Sends the device what it misses and starts delivering deltas to the session: a delta on top of
   * the netmap it holds (`resume`) when the hub can tell what changed since, else a snapshot.
   * Returns how it was brought up to date, or null when the device is not in the account.
   */
  attach(session: ControlSession, resume?: { token: string; lastSerial: number }): Attached | null {
    // session.serial arrives holding the lowest serial this frame may carry.
    const serial = Math.max(this.netmap.serial, session.serial);
    const token = this.resumeToken();
    const resumed = resume && this.resume(session.deviceId, resume, serial, token);
    if (resumed && 'frame' in resumed) {
      this.start(session, serial, resumed.frame, 'delta');
      return { how: 'resumed' };
    }
    const frame = session.compact
      ? this.netmap.compressedSnapshotFrame(session.deviceId, serial, token)
      : this.netmap.snapshotFrame(session.deviceId, serial, token);
    if (frame === undefined) return null;
    this.start(session, serial, frame, 'netmap');
    return resumed ? { how: 'snapshot', refused: resumed.refused } : { how: 'snapshot' };
  }

  private resume(
    deviceId: string,
    resume: { token: string; lastSerial: number },
    serial: number,
    token: string,
  ): { frame: string } | { refused: ResumeRefusal } | undefined {
    const cursor = this.cursorOf(resume.token);
    if (cursor === undefined) return { refused: 'token' };
    return this.netmap.resumeFrame(deviceId, { cursor, base: resume.lastSerial }, serial, token);
  }

  private start(
    session: ControlSession,
    serial: number,
    frame: string | Buffer,
    type: 'delta' | 'netmap',
  ): void {
    this.sessions.set(session.deviceId, session);
    session.serial = serial;
    session.send(frame, type);
  }

  detach(session: ControlSession): void {
    if (this.sessions.get(session.deviceId) !== session) return;
    this.sessions.delete(session.deviceId);
  }

  /**
   * How long the last flush took, and when it ended. Under a burst of changes in a large account a
   * flush starts no sooner than that long (at most MAX_WINDOW_MS) after the last one ended, so
   * flushing takes at most about half the event loop and batches grow instead of queueing up. A
   * change after a quiet spell waits only the short window, however large the account (the gap
   * was counted from the change before: an isolated change at 10,000 devices waited 250 ms).
   */
  private lastFlushMs = 0;
  private lastFlushEnd = Number.NEGATIVE_INFINITY;

  /** When the pending flush is due (performance.now()). */
  private due = 0;

  private schedule(): void {
    const kind = this.netmap.pendingKind();
    if (kind === 'none') return;
    const now = performance.now();
    const gap = this.lastFlushEnd + Math.min(this.lastFlushMs, MAX_WINDOW_MS) - now;
    const window = Math.max(this.coalesceMs, gap);
    const presenceWindow = Math.min(
      PRESENCE_MAX_MS,
      Math.max(this.sessions.size * PRESENCE_MS_PER_SESSION, this.lastFlushMs * PRESENCE_FLUSH_SHARE),
    );
    const delay = kind === 'presence' ? Math.max(window, presenceWindow) : window;
    // A change that cannot wait brings forward a flush that only presence was waiting for.
    const due = now + delay;
    if (this.timer && this.due <= due) return;
    clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.flush(), delay);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.netmap.pendingKind() === 'none') return;
    const started = performance.now();
    const batch = this.netmap.takeChanges();
    const resume = this.resumeToken();
    for (const session of this.sessions.values()) {
      const out = this.netmap.batchFrame(
        batch,
        session.deviceId,
        session.serial + 1,
        resume,
        session.compact,
      );
      if (out === undefined) continue;
      session.serial += 1;
      session.send(out.frame, out.type);
    }
    this.lastFlushEnd = performance.now();
    this.lastFlushMs = this.lastFlushEnd - started;
  }

  dispose(): void {
    this.paths?.dispose();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
