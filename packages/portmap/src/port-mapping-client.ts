import { EventEmitter } from 'node:events';
import type { GatewayDiscovery } from './gateway/gateway-discovery';
import { LinuxGatewayDiscovery } from './gateway/linux-gateway';
import { NatPmpMapper } from './natpmp/natpmp-mapper';
import { PcpMapper } from './pcp/pcp-mapper';
import type { MapperTimeouts } from './retry';
import type { MappingProtocol, PortMapper, PortMapping } from './types';
import { UpnpMapper } from './upnp/upnp-mapper';

// Keeps one UDP port mapped on the default gateway for as long as it runs: tries PCP, then NAT-PMP,
// then UPnP-IGD, renews at half the granted lifetime, starts over when a renewal fails, and removes
// the mapping on stop. It reports the external endpoint as a candidate and never throws or rejects.

export interface PortMappedCandidate {
  /** `ip:port`, as @trellis/proto's Endpoint (NetinfoMessage.portMapped, Candidate kind 'portmapped'). */
  endpoint: string;
  ip: string;
  port: number;
  protocol: MappingProtocol;
  expiresAt: number;
}

export interface PortMappingClientOptions {
  internalPort: number;
  /** Lifetime asked for, seconds (default 7200, as RFC 6886 recommends). */
  lifetimeSeconds?: number;
  discovery?: GatewayDiscovery;
  /** The mappers to try for a gateway, in order (default PCP, NAT-PMP, UPnP). */
  mappersFor?: (gateway: string) => PortMapper[];
  timeouts?: MapperTimeouts;
  /** Wait before trying again when no protocol worked, milliseconds (default 60 s). */
  retryDelayMs?: number;
}

export interface PortMappingClientEvents {
  /** The mapped endpoint, or null when there is none any more. Emitted only on change. */
  candidate: [PortMappedCandidate | null];
  /** Every mapping the gateway granted, first map and each renewal alike. */
  mapped: [PortMapping];
  /** Diagnostics: one protocol's attempt failed (not an 'error' event: nothing here is fatal). */
  failure: [{ protocol: MappingProtocol | 'gateway'; message: string }];
}

interface Active {
  gateway: string;
  mapper: PortMapper;
  mapping: PortMapping;
}

export function defaultMappers(gateway: string, timeouts?: MapperTimeouts): PortMapper[] {
  return [
    new PcpMapper(gateway, timeouts),
    new NatPmpMapper(gateway, timeouts),
    new UpnpMapper(gateway, timeouts),
  ];
}

export class PortMappingClient extends EventEmitter<PortMappingClientEvents> {
  private readonly lifetime: number;
  private readonly discovery: GatewayDiscovery;
  private readonly mappersFor: (gateway: string) => PortMapper[];
  private readonly retryDelayMs: number;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private work: Promise<void> = Promise.resolve();
  private active: Active | undefined;

  constructor(private readonly options: PortMappingClientOptions) {
    super();
    this.lifetime = options.lifetimeSeconds ?? 7200;
    this.discovery = options.discovery ?? new LinuxGatewayDiscovery();
    this.mappersFor = options.mappersFor ?? ((gateway) => defaultMappers(gateway, options.timeouts));
    this.retryDelayMs = options.retryDelayMs ?? 60_000;
  }

  /** The mapping currently held, if any. */
  get mapping(): PortMapping | undefined {
    return this.active?.mapping;
  }

  /** Which protocols the current default gateway answers (probes all, in parallel). */
  async probe(): Promise<MappingProtocol[]> {
    try {
      const route = await this.defaultRoute();
      if (!route) return [];
      const mappers = this.mappersFor(route.gateway);
      const offered = await Promise.all(
        mappers.map((m) =>
          Promise.resolve()
            .then(() => m.probe())
            .catch(() => false),
        ),
      );
      return mappers.filter((_, i) => offered[i]).map((m) => m.protocol);
    } catch {
      return [];
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.enqueue(() => this.acquire());
  }

  /** Start over now (e.g. after a local address or route change). */
  refresh(): void {
    if (!this.running) return;
    this.enqueue(() => this.acquire());
  }

  /** Stops renewing and deletes the mapping from the gateway (best effort). */
  async stop(): Promise<void> {
    if (!this.running) return this.work;
    this.running = false;
    this.clearTimer();
    this.enqueue(() => this.release(), true);
    return this.work;
  }

  private enqueue(task: () => Promise<void>, evenIfStopped = false): void {
    this.work = this.work
      .then(() => (this.running || evenIfStopped ? task() : undefined))
      .catch((error: unknown) => {
        // Only a misbehaving discovery or mapper factory gets here: report it and try again later.
        this.fail('gateway', error);
        this.schedule(() => this.acquire(), this.retryDelayMs);
      });
  }

  private defaultRoute() {
    return Promise.resolve()
      .then(() => this.discovery.defaultRoute())
      .catch(() => undefined);
  }

  /** Maps from scratch on the current gateway, giving back whatever was held before. */
  private async acquire(): Promise<void> {
    this.clearTimer();
    // The old mapping goes first, silently: the candidate changes only if the result differs.
    const previous = this.active;
    if (previous) await this.unmapQuietly(previous);
    const route = await this.defaultRoute();
    if (!route) {
      this.fail('gateway', new Error('no default route'));
      this.setActive(undefined);
      return this.schedule(() => this.acquire(), this.retryDelayMs);
    }
    for (const mapper of this.mappersFor(route.gateway)) {
      if (!this.running) return;
      try {
        const mapping = await mapper.map(this.options.internalPort, this.lifetime);
        return this.hold({ gateway: route.gateway, mapper, mapping });
      } catch (error) {
        this.fail(mapper.protocol, error);
      }
    }
    this.setActive(undefined);
    this.schedule(() => this.acquire(), this.retryDelayMs);
  }

  private async renew(): Promise<void> {
    const active = this.active;
    if (!active) return this.acquire();
    try {
      const mapping = await active.mapper.renew(active.mapping);
      await this.hold({ ...active, mapping });
    } catch (error) {
      this.fail(active.mapper.protocol, error);
      await this.acquire();
    }
  }

  private async hold(active: Active): Promise<void> {
    if (!this.running) {
      // Stopped while the request was in flight. A renewal replaces what the queued release gives
      // back (and announces as gone); a brand-new mapping nobody has heard of is given back here.
      if (this.active) this.active = active;
      else await this.unmapQuietly(active);
      return;
    }
    this.setActive(active);
    const { mapping } = active;
    this.emit('mapped', mapping);
    const lifetimeMs = Number.isFinite(mapping.expiresAt)
      ? mapping.expiresAt - Date.now()
      : this.lifetime * 1000;
    this.schedule(() => this.renew(), Math.max(1000, lifetimeMs / 2));
  }

  private async release(): Promise<void> {
    const active = this.active;
    this.setActive(undefined);
    if (active) await this.unmapQuietly(active);
  }

  private async unmapQuietly(active: Active): Promise<void> {
    try {
      await active.mapper.unmap(active.mapping);
    } catch (error) {
      this.fail(active.mapper.protocol, error);
    }
  }

  private setActive(active: Active | undefined): void {
    const before = this.active?.mapping;
    this.active = active;
    const after = active?.mapping;
    const same =
      before?.externalIp === after?.externalIp &&
      before?.externalPort === after?.externalPort &&
      before?.protocol === after?.protocol;
    if (same) return;
    this.emit(
      'candidate',
      after
        ? {
            endpoint: `${after.externalIp}:${after.externalPort}`,
            ip: after.externalIp,
            port: after.externalPort,
            protocol: after.protocol,
            expiresAt: after.expiresAt,
          }
        : null,
    );
  }

  private schedule(task: () => Promise<void>, delayMs: number): void {
    this.clearTimer();
    if (!this.running) return;
    this.timer = setTimeout(() => this.enqueue(task), delayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fail(protocol: MappingProtocol | 'gateway', error: unknown): void {
    this.emit('failure', { protocol, message: error instanceof Error ? error.message : String(error) });
  }
}
