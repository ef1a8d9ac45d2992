import type { Logger } from 'pino';
import type { EventBus } from '../events/event-bus';
import type { DevicesService } from '../services/devices.service';
import type { AccountHub } from './account-hub';

export interface SerialCheckDeps {
  devices: Pick<DevicesService, 'accountSerials' | 'loadAccount'>;
  /** The ControlHub's loaded accounts (read each check). */
  hubs: ReadonlyMap<string, AccountHub>;
  /** A device removed meanwhile that is connected here: its session closes (deviceRemoved). */
  closeRemoved(deviceId: string): void;
  /**
   * These accounts were reloaded after the bus reconnected: what instances sent each other about
   * them meanwhile (an owner's announcement, inputs forwarded to it) may be lost.
   */
  resynced?(accountIds: string[]): void;
  logger: Logger;
}

/** How often every loaded account's serial is compared with the database's (a missed change is repaired within three). */
export const SERIAL_CHECK_MS = 2_000;

/**
 * Compares every loaded account's serial with the database's every SERIAL_CHECK_MS: a hub that
 * missed a change (a publish lost after its commit, an instance that died between the two) is
 * reloaded, and the difference goes out as ordinary deltas. When the bus reconnects every hub is
 * reloaded: whatever was published while it was away is lost. Each is reloaded at every check until
 * that succeeds (the database away, an account that fails to load), then `resynced`. One check at
 * a time.
 */
export class SerialCheck {
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private running: Promise<unknown> | undefined;
  /** Accounts held when the bus reconnected and not reloaded since (reloaded at each check). */
  private readonly reloadDue = new Set<string>();
  private stopped = false;

  constructor(
    bus: EventBus,
    private readonly deps: SerialCheckDeps,
  ) {
    this.timer = setInterval(() => this.run(false), SERIAL_CHECK_MS);
    this.timer.unref();
    this.unsubscribe = bus.onReconnected(() => {
      for (const id of deps.hubs.keys()) this.reloadDue.add(id);
      this.run(true);
    });
  }

  /** Starts a check, or with `queued` one after the check running now. */
  private run(queued: boolean): void {
    if (this.running && !queued) return;
    const previous = this.running ?? Promise.resolve();
    const run = previous
      .then(() => this.checkOnce())
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'netmap serial check failed'))
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
  }

  /** A check; accounts due since a reconnection are reloaded whatever their serial, then resynced. */
  private async checkOnce(): Promise<void> {
    if (this.stopped) return;
    const reloaded = await this.check(this.reloadDue);
    const resync = reloaded.filter((id) => this.reloadDue.delete(id));
    for (const id of this.reloadDue) if (!this.deps.hubs.has(id)) this.reloadDue.delete(id);
    if (resync.length > 0 && !this.stopped) this.deps.resynced?.(resync);
  }

  /** One check; returns the accounts reloaded: stalled ones, and those `force` names (every one: true). */
  async check(force: boolean | ReadonlySet<string> = false): Promise<string[]> {
    const { devices, hubs, logger } = this.deps;
    if (hubs.size === 0) return [];
    const serials = await devices.accountSerials([...hubs.keys()]);
    const forced = (id: string) => force === true || (force !== false && force.has(id));
    const stale = [...hubs].filter(([id, hub]) => hub.serials.stalled(serials.get(id) ?? 0) || forced(id));
    const reloaded: string[] = [];
    for (const [accountId, hub] of stale) {
      // One account that fails to reload holds up no other (tried again at the next checks).
      try {
        const state = await devices.loadAccount(accountId);
        if (hubs.get(accountId) !== hub) continue; // released meanwhile
        for (const id of hub.reconcile(state.devices, state.serial)) this.deps.closeRemoved(id);
        reloaded.push(accountId);
        // As for a policy-changed event: prepared over the hub's devices (changes keep arriving
        // meanwhile; the read above is not replayed), then applied at once.
        const policy = await hub.preparePolicy(state.policy);
        if (policy && hubs.get(accountId) === hub) hub.usePolicy(policy, state.serial);
      } catch (err) {
        logger.warn({ accountId, err: (err as Error).message }, 'account netmap reload failed');
      }
    }
    if (reloaded.length > 0) logger.warn({ accounts: reloaded.length }, 'account netmaps reloaded');
    return reloaded;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe();
  }
}
