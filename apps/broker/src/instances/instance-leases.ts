import type { Logger } from 'pino';
import { DEFAULT_LEASE_MS, DEFAULT_LEASE_RENEW_MS } from '../defaults';
import type { BrokerMetrics } from '../metrics';
import type { DevicesService } from '../services/devices.service';
import type { InstancesService } from '../services/instances.service';

/** Runs `fn` every `ms` until the returned function is called. */
export type Repeat = (ms: number, fn: () => void) => () => void;

const everyMs: Repeat = (ms, fn) => {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export interface InstanceLeasesOptions {
  instanceId: string;
  /** Shown in `instances list`. */
  url: string;
  version: string;
  instances: InstancesService;
  devices: DevicesService;
  metrics: BrokerMetrics;
  logger: Logger;
  /** How often the lease is renewed and expired leases are swept; default 1 s. */
  renewMs?: number;
  /** How long a lease lasts without renewal; default 3 s. */
  leaseMs?: number;
  /**
   * How long after its lease expired a dead instance is taken over (its devices marked offline):
   * the offline grace of a closed connection, so devices that reconnect elsewhere meanwhile never
   * go offline for their peers. Default 0.
   */
  takeoverGraceMs?: number;
  /** The timer (tests pass one that never fires and call tick()). */
  repeat?: Repeat;
}

/** WebSocket "service restart": the broker closes its control connections with it when its lease is lost. */
export const LEASE_LOST_CLOSE_CODE = 1012;

/** Called when this instance's lease was taken over; the broker closes its control connections. */
export type LeaseLostHandler = () => Promise<void> | void;

/**
 * This instance's lease in the shared database. Each round renews it and then sweeps: another
 * instance whose lease expired is dead and is taken over (its devices go offline). An instance that
 * finds its own lease gone (it was paused or cut off long enough to be taken over) tells its
 * handlers, so devices reconnect, and registers again.
 */
export class InstanceLeases {
  readonly instanceId: string;
  readonly renewMs: number;
  readonly leaseMs: number;
  private readonly lostHandlers = new Set<LeaseLostHandler>();
  private url: string;
  private stopRepeat: (() => void) | undefined;
  private renewing: Promise<boolean> | undefined;
  private sweeping: Promise<void> | undefined;
  private renewFailing = false;
  private stopped = false;

  constructor(private readonly opts: InstanceLeasesOptions) {
    this.instanceId = opts.instanceId;
    this.url = opts.url;
    this.renewMs = opts.renewMs ?? DEFAULT_LEASE_RENEW_MS;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(this.renewMs > 0 && this.leaseMs > this.renewMs))
      throw new Error(
        `lease (${this.leaseMs} ms) must be longer than its renew interval (${this.renewMs} ms)`,
      );
  }

  private readonly takeoverHandlers = new Set<(deadInstanceId: string) => void>();

  /** Called on the instance that took a dead one over (it tells the others: `instance-gone`). */
  onTakeover(fn: (deadInstanceId: string) => void): () => void {
    this.takeoverHandlers.add(fn);
    return () => this.takeoverHandlers.delete(fn);
  }

  onLost(fn: LeaseLostHandler): () => void {
    this.lostHandlers.add(fn);
    return () => this.lostHandlers.delete(fn);
  }

  /** Registers the lease, sweeps once (a predecessor that died is taken over now), then repeats. */
  async start(): Promise<void> {
    await this.register();
    await this.sweep();
    this.stopRepeat = (this.opts.repeat ?? everyMs)(this.renewMs, () => void this.tick());
  }

  /**
   * One round: renew, then sweep. A renewal never waits for a sweep: taking a dead instance over
   * (its devices offline, while they reconnect here) took longer than the lease in `bench
   * failover`, and an instance whose renewal waited behind it was itself taken over. A call while a
   * renewal (or a sweep) runs joins it instead of overlapping it.
   */
  tick(): Promise<void> {
    this.renewing ??= this.renew().finally(() => {
      this.renewing = undefined;
    });
    const renewing = this.renewing;
    this.sweeping ??= renewing
      .then((held) => (held ? this.sweep() : undefined))
      .finally(() => {
        this.sweeping = undefined;
      });
    const sweeping = this.sweeping;
    return Promise.all([renewing, sweeping]).then(() => undefined);
  }

  /** Renews the lease (registering again if it was lost); true when it is held now. */
  private async renew(): Promise<boolean> {
    if (this.stopped) return false;
    const { instances, logger } = this.opts;
    let held: boolean;
    try {
      held = await instances.renew(this.instanceId, this.leaseMs);
    } catch (err) {
      // Only a definite "row gone" means taken over; a database hiccup is retried next round.
      if (!this.renewFailing) logger.warn({ err: String(err) }, 'instance lease renewal failed');
      this.renewFailing = true;
      return false;
    }
    if (this.renewFailing) logger.info({ instanceId: this.instanceId }, 'instance lease renewed again');
    this.renewFailing = false;
    if (held) return true;
    try {
      await this.lost();
      return true;
    } catch (err) {
      // Not registered again: the next round finds the row still gone and retries all of it.
      logger.error({ err: String(err) }, 'recovering from a lost instance lease failed');
      return false;
    }
  }

  private async lost(): Promise<void> {
    const { logger, metrics, devices } = this.opts;
    metrics.instanceLeaseLost.inc();
    logger.warn(
      { instanceId: this.instanceId },
      'instance lease lost (taken over by another instance): closing control connections',
    );
    for (const fn of this.lostHandlers) {
      try {
        await fn();
      } catch (err) {
        logger.error({ err: String(err) }, 'lease-lost handler failed');
      }
    }
    // Devices marked online here after the takeover (none once the handlers closed everything).
    const stragglers = await devices.disconnectInstance(this.instanceId);
    await this.register();
    logger.info({ instanceId: this.instanceId, stragglers }, 'instance lease registered again');
  }

  /** The URL became known after the lease was taken (port 0 is only known once listening). */
  async setUrl(url: string): Promise<void> {
    if (url === this.url) return;
    this.url = url;
    // An update, not register(): a lease taken over meanwhile must stay gone until renew notices.
    await this.opts.instances.setUrl(this.instanceId, url);
  }

  private register(): Promise<void> {
    const { instances, version } = this.opts;
    return instances.register(this.instanceId, this.url, version, this.leaseMs);
  }

  private async sweep(): Promise<void> {
    const { instances, logger, metrics } = this.opts;
    try {
      let live = 0;
      const grace = this.opts.takeoverGraceMs ?? 0;
      for (const lease of await instances.leases(grace)) {
        if (!lease.expired || lease.id === this.instanceId) live += 1;
        if (!lease.due || lease.id === this.instanceId) continue;
        const devices = await instances.takeOver(lease.id, grace);
        if (devices === null) continue;
        metrics.instanceTakeovers.inc();
        logger.warn({ deadInstanceId: lease.id, devices }, 'instance taken over');
        for (const fn of this.takeoverHandlers) fn(lease.id);
      }
      metrics.instancesLive.set(live);
    } catch (err) {
      logger.warn({ err: String(err) }, 'instance lease sweep failed');
    }
  }

  /**
   * Clean shutdown, after the control connections have closed: takes offline whatever this instance
   * still holds and deletes its lease, so no survivor needs to wait for it to expire.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopRepeat?.();
    await Promise.all([this.renewing, this.sweeping]);
    const devices = await this.opts.devices.disconnectInstance(this.instanceId);
    await this.opts.instances.remove(this.instanceId);
    this.opts.logger.info({ instanceId: this.instanceId, devices }, 'instance lease released');
  }
}
