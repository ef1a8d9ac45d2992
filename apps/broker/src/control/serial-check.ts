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
  logger: Logger;
}

/** How often every loaded account's serial is compared with the database's (a missed change is repaired within three). */
export const SERIAL_CHECK_MS = 2_000;

/**
 * Compares every loaded account's serial with the database's every SERIAL_CHECK_MS: a hub that
 * missed a change (a publish lost after its commit, an instance that died between the two) is
 * reloaded, and the difference goes out as ordinary deltas. When the bus reconnects every hub is
 * reloaded: whatever was published while it was away is lost. One check at a time; a failed one
 * (the database away) is tried again at the next interval.
 */
export class SerialCheck {
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private running: Promise<unknown> | undefined;

  constructor(
    bus: EventBus,
    private readonly deps: SerialCheckDeps,
  ) {
    this.timer = setInterval(() => this.run(false), SERIAL_CHECK_MS);
    this.timer.unref();
    this.unsubscribe = bus.onReconnected(() => this.run(true));
  }

  private run(all: boolean): void {
    if (this.running && !all) return;
    const previous = this.running ?? Promise.resolve();
    const run = previous
      .then(() => this.check(all))
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'netmap serial check failed'))
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
  }

  /** One check; returns the accounts reloaded. */
  async check(all = false): Promise<string[]> {
    const { devices, hubs, logger } = this.deps;
    if (hubs.size === 0) return [];
    const serials = await devices.accountSerials([...hubs.keys()]);
    const stale = [...hubs].filter(([id, hub]) => hub.serials.stalled(serials.get(id) ?? 0) || all);
    const reloaded: string[] = [];
    for (const [accountId, hub] of stale) {
      const state = await devices.loadAccount(accountId);
      if (hubs.get(accountId) !== hub) continue; // released meanwhile
      for (const id of hub.reconcile(state.devices, state.serial)) this.deps.closeRemoved(id);
      reloaded.push(accountId);
      // As for a policy-changed event: prepared over the hub's devices (changes keep arriving
      // meanwhile; the read above is not replayed), then applied at once.
      const policy = await hub.preparePolicy(state.policy);
      if (policy && hubs.get(accountId) === hub) hub.usePolicy(policy, state.serial);
    }
    if (reloaded.length > 0) logger.warn({ accounts: reloaded.length, all }, 'account netmaps reloaded');
    return reloaded;
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }
}
