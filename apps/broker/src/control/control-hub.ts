import {
  CloseCode,
  type DeviceFrame,
  type DeviceState,
  inMesh,
  type PairInput,
  type PathReportMessage,
  type PathWantMessage,
  type ReflectorInfo,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerEvent, EventBus } from '../events/event-bus';
import type { PairPathTimings } from '../pair-paths/pair-path-driver';
import { AccountPolicy } from '../policy/account-policy';
import type { RelayDirectory } from '../relay/relay-directory';
import type { DevicesService } from '../services/devices.service';
import { AccountHub, type Attached } from './account-hub';
import { AccountPaths } from './account-paths';
import type { ControlSession } from './control-session';
import { followRelays } from './follow-relays';
import { HeldTimers } from './held-timers';
import { pairPathDriverFor } from './pair-path-driver-for';
import { PathsHandoff } from './paths-handoff';
import { ReflexiveForwarder, type ReflexiveSource } from './reflexive-forwarder';
import { SerialCheck } from './serial-check';

/** How often a hub kept past its linger by a busy instance looks again. */
const LINGER_RECHECK_MS = 1_000;

/** The serial tracker's key for policy changes (device changes are keyed by device id). */
const POLICY_CHANGE = 'policy';

interface Loading {
  promise: Promise<AccountHub>;
  buffered: BrokerEvent[];
}

/**
 * Routes bus events to the account hubs of this instance. An account's netmap is held in memory
 * only while at least one of its devices is connected here; it is loaded from the database on the
 * first connection and kept current by events from then on.
 */
export class ControlHub {
  private readonly hubs = new Map<string, AccountHub>();
  /** Hubs with no connection left, kept for lingerMs (longer while busy): the timer that releases each. */
  private readonly lingering: HeldTimers<string>;
  private readonly loading = new Map<string, Loading>();
  private readonly byDevice = new Map<string, ControlSession>();
  private unsubscribe: (() => void) | undefined;
  private readonly reflexive: ReflexiveForwarder;
  private readonly handoff: PathsHandoff;

  constructor(
    private readonly devices: DevicesService,
    private readonly bus: EventBus,
    private readonly opts: {
      /** This instance (cluster-events InstanceId): decides the accounts it owns (AccountPaths). */
      instanceId: string;
      zone: string;
      coalesceMs: number;
      logger: Logger;
      reflectors?: readonly ReflectorInfo[];
      /** What this instance's reflectors saw (BrokerReflectors): punches wait for fresh addresses. */
      reflexive?: ReflexiveSource;
      /** Punch and relay timings (tests). */
      pathTimings?: PairPathTimings;
      /** The relays connected to this instance; without it no pair is relayed. */
      relays?: RelayDirectory;
      /**
       * How long an account's hub outlives its last connection here (0: not at all). Devices that
       * reconnect meanwhile resume from its journal instead of loading a new hub and a snapshot.
       */
      lingerMs?: number;
      /**
       * While true (devices are still reconnecting here), a hub past its linger stays, looked at
       * again every second, up to lingerHoldMaxMs after its last connection left.
       */
      busy?: () => boolean;
      lingerHoldMaxMs?: number;
      /** A hub was kept past its linger (once per linger). */
      onLingerHeld?: () => void;
    },
  ) {
    this.lingering = new HeldTimers({
      recheckMs: LINGER_RECHECK_MS,
      busy: () => opts.busy?.() ?? false,
      onHeld: () => opts.onLingerHeld?.(),
    });
    this.reflexive = new ReflexiveForwarder(opts.reflexive, (id) => {
      const session = this.byDevice.get(id);
      return session && this.hubs.get(session.accountId)?.paths;
    });
    this.handoff = new PathsHandoff(opts.instanceId, this.reflexive, (e) => this.publish(e), opts.logger);
  }

  /** A shared relay's reflector used as the second one (the broker has a single address). */
  private extraReflector: ReflectorInfo | undefined;

  private reflectorList(): ReflectorInfo[] {
    return [...(this.opts.reflectors ?? []), ...(this.extraReflector ? [this.extraReflector] : [])];
  }

  /** Sets (or clears) the relay reflector every account's devices also handshake with. */
  setExtraReflector(reflector: ReflectorInfo | undefined): void {
    if (JSON.stringify(reflector) === JSON.stringify(this.extraReflector)) return;
    this.extraReflector = reflector;
    for (const hub of this.hubs.values()) hub.setReflectors(this.reflectorList());
  }

  private serialCheck: SerialCheck | undefined;

  start(): void {
    this.unsubscribe = this.bus.subscribe((e) => this.onEvent(e));
    this.serialCheck = new SerialCheck(this.bus, {
      devices: this.devices,
      hubs: this.hubs,
      closeRemoved: (id) => this.byDevice.get(id)?.close(CloseCode.deviceRemoved, 'device removed'),
      resynced: (accountIds) => this.handoff.resync(accountIds, this.hubs),
      logger: this.opts.logger,
    });
    this.reflexive.start();
    if (this.opts.relays) followRelays(this.opts.relays, this.hubs);
  }

  /** Whether the device with this WireGuard key is connected to this instance. */
  holdsKey(publicKey: string): boolean {
    return this.reflexive.holdsKey(publicKey);
  }

  get connectedCount(): number {
    return this.byDevice.size;
  }

  /** Device pairs the accounts' pair-path cores hold on this instance (read-only; the benchmark). */
  get pairCount(): number {
    let n = 0;
    for (const hub of this.hubs.values()) n += hub.paths?.active?.pairCount ?? 0;
    return n;
  }

  private onEvent(e: BrokerEvent): void {
    switch (e.kind) {
      case 'device-connected': {
        const s = this.byDevice.get(e.deviceId);
        if (s && s.connectionId !== e.connectionId)
          s.close(CloseCode.replaced, 'replaced by a newer connection');
        return;
      }
      case 'pair-input':
        this.hubs.get(e.accountId)?.paths?.input(e.input, false);
        return;
      case 'device-frame':
        this.deliver(e.accountId, e.deviceId, e.frame);
        return;
      case 'paths-owner': {
        const hub = e.instance === this.opts.instanceId ? undefined : this.hubs.get(e.accountId);
        if (hub) this.handoff.ownerThere(e.accountId, hub, e.instance);
        return;
      }
      case 'device-upsert':
      case 'device-remove':
      case 'policy-changed':
        break;
      default:
        return; // relay traffic between instances: the cluster relay directory's
    }
    if (e.kind === 'device-remove') {
      this.byDevice.get(e.deviceId)?.close(CloseCode.deviceRemoved, 'device removed');
    }
    if (e.kind === 'device-upsert') this.closeRekeyed(e.device);
    const loading = this.loading.get(e.accountId);
    if (loading) {
      loading.buffered.push(e);
      return;
    }
    this.apply(this.hubs.get(e.accountId), e);
  }

  /**
   * An admin re-key: a connection authenticated with the replaced key is closed (keyChanged). A
   * rotation's connection is left open: its agent reconnects with the new key once answered.
   */
  private closeRekeyed(device: DeviceState): void {
    const change = device.keyChange;
    const session = this.byDevice.get(device.id);
    if (change?.kind !== 'rekeyed' || !session || session.publicKey !== change.previousKey) return;
    if (device.publicKey === session.publicKey) return;
    session.close(CloseCode.keyChanged, "the device's key was replaced by an admin");
  }

  /** A frame the account's owner sends a device: delivered if it is connected here. */
  private deliver(accountId: string, deviceId: string, frame: DeviceFrame): void {
    const session = this.byDevice.get(deviceId);
    if (session?.accountId === accountId) this.sendTo(session, frame);
  }

  private sendTo(session: ControlSession, frame: DeviceFrame): void {
    if (frame.type === 'relay-release')
      this.handoff.relayed.released(session.deviceId, frame.peerId, frame.allocationId);
    session.send(JSON.stringify(frame), frame.type);
  }

  private apply(hub: AccountHub | undefined, e: BrokerEvent): void {
    if (!hub) return;
    // A device waiting for approval is in no netmap: as if it were not there (yet).
    if (e.kind === 'device-upsert' && !inMesh(e.device))
      hub.applyChange({ kind: 'remove', deviceId: e.device.id }, e.serial);
    else if (e.kind === 'device-upsert') hub.applyChange({ kind: 'upsert', device: e.device }, e.serial);
    else if (e.kind === 'device-remove') hub.applyChange({ kind: 'remove', deviceId: e.deviceId }, e.serial);
    else if (e.kind === 'policy-changed' && hub.serials.accept(e.serial, POLICY_CHANGE)) {
      void this.loadPolicy(e.accountId, hub, e.serial);
    }
  }

  /**
   * Reads the account's policy in force (the event names a version, a newer one may be in force by
   * now) and re-filters the hub's netmaps. A failed read is tried again while the hub lives: the
   * serial was counted as applied, so the serial check would not notice.
   */
  private async loadPolicy(accountId: string, hub: AccountHub, serial: number): Promise<void> {
    for (let attempt = 0; this.hubs.get(accountId) === hub; attempt++) {
      try {
        const stored = await this.devices.loadPolicy(accountId);
        if (this.hubs.get(accountId) !== hub) return;
        const policy = await hub.preparePolicy(stored);
        if (!policy || this.hubs.get(accountId) !== hub) return;
        if (hub.usePolicy(policy, serial)) {
          this.opts.logger.info({ accountId, version: policy.version }, 'access policy applied to netmaps');
        }
        return;
      } catch (err) {
        this.opts.logger.warn(
          { accountId, err: (err as Error).message, attempt },
          'reading the policy failed',
        );
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** attempt)));
      }
    }
  }

  private async hubFor(accountId: string, accountName: string): Promise<AccountHub> {
    const existing = this.hubs.get(accountId);
    if (existing) return existing;
    const pending = this.loading.get(accountId);
    if (pending) return pending.promise;
    const buffered: BrokerEvent[] = [];
    const promise = (async () => {
      try {
        const state = await this.devices.loadAccount(accountId);
        const hub = AccountHub.create(
          accountName,
          this.opts.zone,
          this.opts.coalesceMs,
          state.serial,
          state.devices,
          this.reflectorList(),
          this.opts.relays?.netmapRelays(accountId) ?? [],
          AccountPolicy.build(state.policy.version, state.policy.text, state.devices),
        );
        hub.policyVersion = state.policy.version;
        hub.paths = new AccountPaths(hub.netmap, {
          instanceId: this.opts.instanceId,
          makeDriver: () =>
            pairPathDriverFor(accountId, hub, this.opts, (id, frame) =>
              this.sendFrame(accountId, hub, id, frame),
            ),
          forward: (input) => this.publish({ kind: 'pair-input', accountId, input }),
          ownerHere: (driver) => {
            this.handoff.ownerHere(accountId, hub, driver);
            // Once the hub is in place: the answers may come at once.
            queueMicrotask(() =>
              this.publish({ kind: 'paths-owner', accountId, instance: this.opts.instanceId }),
            );
          },
        });
        // Events that raced with the load: only those newer than the state read still apply.
        for (const e of buffered) if ('serial' in e && e.serial > state.serial) this.apply(hub, e);
        this.hubs.set(accountId, hub);
        return hub;
      } finally {
        this.loading.delete(accountId);
      }
    })();
    this.loading.set(accountId, { promise, buffered });
    return promise;
  }

  /** A frame of the account's pair paths: to the device's session here, else to its instance. */
  private sendFrame(accountId: string, hub: AccountHub, deviceId: string, frame: DeviceFrame): void {
    const session = hub.sessions.get(deviceId);
    if (session) {
      this.sendTo(session, frame);
      return;
    }
    if (hub.netmap.get(deviceId)?.online) this.publish({ kind: 'device-frame', accountId, deviceId, frame });
  }

  private publish(event: BrokerEvent): void {
    this.bus.publish(event).catch((err: Error) => {
      this.opts.logger.warn({ kind: event.kind, err: err.message }, 'broker event not published');
    });
  }

  /**
   * Brings the session's device up to date (a delta from the netmap it holds, if it names one the hub
   * can resume, else a snapshot) and subscribes it to deltas; null if the device is gone.
   */
  async attach(
    session: ControlSession,
    accountName: string,
    resume?: { token: string; lastSerial: number },
  ): Promise<Attached | null> {
    this.byDevice.get(session.deviceId)?.close(CloseCode.replaced, 'replaced by a newer connection');
    const hub = await this.hubFor(session.accountId, accountName);
    const how = hub.attach(session, resume);
    if (how === null) {
      this.releaseIfIdle(session.accountId, hub);
      return null;
    }
    this.lingering.cancel(session.accountId);
    this.handoff.relayed.forget(session.deviceId);
    this.byDevice.set(session.deviceId, session);
    this.reflexive.attached(session.deviceId, hub.netmap.get(session.deviceId)?.publicKey, Date.now());
    return how;
  }

  detach(session: ControlSession): void {
    const hub = this.hubs.get(session.accountId);
    if (this.byDevice.get(session.deviceId) === session) {
      this.byDevice.delete(session.deviceId);
      this.reflexive.detached(session.deviceId);
      this.handoff.relayed.forget(session.deviceId);
    }
    if (!hub) return;
    hub.detach(session);
    this.releaseIfIdle(session.accountId, hub);
  }

  private releaseIfIdle(accountId: string, hub: AccountHub): void {
    if (hub.sessions.size > 0 || this.hubs.get(accountId) !== hub || this.lingering.has(accountId)) return;
    const linger = this.opts.lingerMs ?? 0;
    if (linger <= 0) {
      this.release(accountId, hub);
      return;
    }
    // A storm longer than the linger released the hub mid-storm, and with it the journal every
    // reconnecting device's resume token points into: all of them got snapshots (bench netmap).
    this.lingering.arm(accountId, linger, this.opts.lingerHoldMaxMs ?? 0, () => {
      if (hub.sessions.size === 0 && this.hubs.get(accountId) === hub) this.release(accountId, hub);
    });
  }

  private release(accountId: string, hub: AccountHub): void {
    hub.dispose();
    this.hubs.delete(accountId);
  }

  /** A device's `path` report or `want-path`: its account's pair paths decide (here or at the owner). */
  pathMessage(deviceId: string, msg: PathReportMessage | PathWantMessage): void {
    const session = this.byDevice.get(deviceId);
    if (!session) return;
    const hub = this.hubs.get(session.accountId);
    // A pair the policy hides from the device is not one: no punches, no relay for it.
    if (!hub?.netmap.canSee(deviceId, msg.peerId)) return;
    this.handoff.relayed.noted(deviceId, msg);
    const input: PairInput =
      msg.type === 'want-path'
        ? { kind: 'want', from: deviceId, peerId: msg.peerId, relayed: msg.relayed === true }
        : { kind: 'path-report', from: deviceId, report: msg };
    hub.paths?.input(input, true);
  }

  /** The account of a device connected here, and which peers its netmap has (topology reports). */
  peersOf(deviceId: string): { accountId: string; canSee(peerId: string): boolean } | null {
    const session = this.byDevice.get(deviceId);
    const hub = session && this.hubs.get(session.accountId);
    if (!session || !hub) return null;
    return { accountId: session.accountId, canSee: (peerId) => hub.netmap.canSee(deviceId, peerId) };
  }

  /** Sends pending deltas now (tests and shutdown). */
  flushAll(): void {
    for (const hub of this.hubs.values()) hub.flush();
  }

  stop(): void {
    this.serialCheck?.stop();
    this.unsubscribe?.();
    this.reflexive.stop();
    this.lingering.clear();
    for (const hub of this.hubs.values()) hub.dispose();
    this.hubs.clear();
  }
}
