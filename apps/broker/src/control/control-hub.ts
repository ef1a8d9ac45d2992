import { CloseCode, type PathReportMessage, type ReflectorInfo } from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerEvent, EventBus } from '../events/event-bus';
import { PunchCoordinator, type PunchCoordinatorOptions } from '../punch/punch-coordinator';
import type { DevicesService } from '../services/devices.service';
import { AccountHub } from './account-hub';
import type { ControlSession } from './control-session';

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
  private readonly loading = new Map<string, Loading>();
  private readonly byDevice = new Map<string, ControlSession>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly devices: DevicesService,
    private readonly bus: EventBus,
    private readonly opts: {
      zone: string;
      coalesceMs: number;
      logger: Logger;
      reflectors?: readonly ReflectorInfo[];
      /** Punch timings (tests). */
      punch?: Partial<
        Pick<PunchCoordinatorOptions, 'startDelayMs' | 'deadlineMs' | 'settleMs' | 'backoffInitialMs'>
      >;
    },
  ) {}

  start(): void {
    this.unsubscribe = this.bus.subscribe((e) => this.onEvent(e));
  }

  get connectedCount(): number {
    return this.byDevice.size;
  }

  private onEvent(e: BrokerEvent): void {
    if (e.kind === 'device-connected') {
      const s = this.byDevice.get(e.deviceId);
      if (s && s.connectionId !== e.connectionId)
        s.close(CloseCode.replaced, 'replaced by a newer connection');
      return;
    }
    if (e.kind === 'device-remove') {
      this.byDevice.get(e.deviceId)?.close(CloseCode.deviceRemoved, 'device removed');
    }
    const loading = this.loading.get(e.accountId);
    if (loading) {
      loading.buffered.push(e);
      return;
    }
    this.apply(this.hubs.get(e.accountId), e);
  }

  private apply(hub: AccountHub | undefined, e: BrokerEvent): void {
    if (!hub) return;
    if (e.kind === 'device-upsert') hub.upsert(e.device, e.serial);
    else if (e.kind === 'device-remove') hub.remove(e.deviceId, e.serial);
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
          this.opts.reflectors ?? [],
        );
        const punches = new PunchCoordinator({
          device: (id) => hub.netmap.punchView(id),
          connected: () => hub.sessions.keys(),
          send: (id, msg) => hub.sessions.get(id)?.send(JSON.stringify(msg), 'punch'),
          logger: this.opts.logger,
          reflectorsRun: (this.opts.reflectors ?? []).length > 0,
          ...this.opts.punch,
        });
        hub.punches = punches;
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

  /** Sends the session its snapshot and subscribes it to deltas; false if the device is gone. */
  async attach(session: ControlSession, accountName: string): Promise<boolean> {
    this.byDevice.get(session.deviceId)?.close(CloseCode.replaced, 'replaced by a newer connection');
    const hub = await this.hubFor(session.accountId, accountName);
    if (!hub.attach(session)) {
      this.releaseIfIdle(session.accountId, hub);
      return false;
    }
    this.byDevice.set(session.deviceId, session);
    return true;
  }

  detach(session: ControlSession): void {
    if (this.byDevice.get(session.deviceId) === session) this.byDevice.delete(session.deviceId);
    const hub = this.hubs.get(session.accountId);
    if (!hub) return;
    hub.detach(session);
    this.releaseIfIdle(session.accountId, hub);
  }

  private releaseIfIdle(accountId: string, hub: AccountHub): void {
    if (hub.sessions.size > 0 || this.hubs.get(accountId) !== hub) return;
    hub.dispose();
    this.hubs.delete(accountId);
  }

  /** A device's `path` report: the punch coordinator of its account decides on retries. */
  pathReport(deviceId: string, report: PathReportMessage): void {
    const session = this.byDevice.get(deviceId);
    if (!session) return;
    this.hubs.get(session.accountId)?.punches?.report(deviceId, report);
  }

  /** Sends pending deltas now (tests and shutdown). */
  flushAll(): void {
    for (const hub of this.hubs.values()) hub.flush();
  }

  stop(): void {
    this.unsubscribe?.();
    for (const hub of this.hubs.values()) hub.dispose();
    this.hubs.clear();
  }
}
