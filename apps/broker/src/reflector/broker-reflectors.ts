import { join } from 'node:path';
import type { MappingType, ReflectorInfo } from '@trellis/proto';
import { formatEndpoint, inMesh, parseEndpoint } from '@trellis/proto';
import {
  classifyNatMapping,
  EndpointReflector,
  loadOrCreateReflectorKey,
  type Observation,
  type ReflectorCounters,
} from '@trellis/reflector';
import type { Logger } from 'pino';
import type { BrokerEvent, EventBus } from '../events/event-bus';
import type { DevicesService } from '../services/devices.service';
import { EnrolledKeyCache } from './enrolled-keys';

export interface ReflectorAddress {
  /** Address to bind. */
  host: string;
  /** UDP port; 0 picks a free one. */
  port: number;
  /** The IP agents send to (the bind address unless it is a wildcard). */
  publicHost: string;
}

export interface BrokerReflectorsOptions {
  dataDir: string;
  primary: ReflectorAddress;
  /** A second reflector on another IP: comparing both observations classifies the NAT's mapping. */
  secondary?: ReflectorAddress;
  devices: DevicesService;
  bus: EventBus;
  logger: Logger;
}

interface Learned {
  endpoints: string[];
  mapping: MappingType | undefined;
}

/**
 * The broker's endpoint reflectors (ARCHITECTURE "Endpoint discovery through WireGuard itself"):
 * every observation becomes the device's `reflexive` candidate(s) in the database, which the netmap
 * fans out to its peers; with two reflectors the device's NAT mapping type is stored too.
 */
export class BrokerReflectors {
  private readonly reflectors: EndpointReflector[] = [];
  private readonly infos: ReflectorInfo[] = [];
  /** Latest observation per device key, one slot per reflector. */
  private readonly seen = new Map<string, Array<Observation | undefined>>();
  private readonly written = new Map<string, string>();
  private readonly keyOfDevice = new Map<string, string>();
  private readonly enrolled: EnrolledKeyCache;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(publicKey: string) => void>();
  /** One database write per device at a time, in observation order. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly opts: BrokerReflectorsOptions) {
    this.enrolled = new EnrolledKeyCache((key) => opts.devices.isEnrolledKey(key));
  }

  async start(): Promise<ReflectorInfo[]> {
    this.unsubscribe = this.opts.bus.subscribe((e) => this.onEvent(e));
    const addresses = [this.opts.primary, ...(this.opts.secondary ? [this.opts.secondary] : [])];
    for (const [i, addr] of addresses.entries()) {
      const privateKey = loadOrCreateReflectorKey(
        join(this.opts.dataDir, i === 0 ? 'reflector.key' : 'reflector2.key'),
      );
      const reflector = new EndpointReflector({
        privateKey,
        host: addr.host,
        port: addr.port,
        isEnrolled: (key) => this.enrolled.isEnrolled(key),
      });
      const bound = await reflector.start();
      reflector.on('observed', (o) => this.onObserved(i, o));
      this.reflectors.push(reflector);
      this.infos.push({
        publicKey: reflector.publicKey,
        endpoint: formatEndpoint(addr.publicHost, bound.port),
      });
    }
    this.opts.logger.info({ reflectors: this.infos }, 'endpoint reflectors listening');
    return [...this.infos];
  }

  get info(): ReflectorInfo[] {
    return [...this.infos];
  }

  counters(): ReflectorCounters[] {
    return this.reflectors.map((r) => r.counters());
  }

  /** Calls `fn` with the device key of every observation; returns the unsubscribe. */
  onObservation(fn: (publicKey: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The endpoints the reflectors saw `publicKey` at in packets since `since` (ms); null if none. */
  seenSince(publicKey: string, since: number): string[] | null {
    const fresh = (this.seen.get(publicKey) ?? []).filter(
      (s): s is Observation => s !== undefined && s.at >= since,
    );
    return fresh.length > 0 ? [...new Set(fresh.map((s) => s.endpoint))] : null;
  }

  private onEvent(e: BrokerEvent): void {
    // A virtual device has no key: nothing of it reaches a reflector.
    const key = e.kind === 'device-upsert' && inMesh(e.device) ? e.device.publicKey : undefined;
    if (e.kind === 'device-upsert' && key !== undefined) {
      this.keyOfDevice.set(e.device.id, key);
      this.enrolled.set(key, true);
    } else if (e.kind === 'device-remove') {
      const key = this.keyOfDevice.get(e.deviceId);
      this.keyOfDevice.delete(e.deviceId);
      if (key) this.forget(key);
    }
  }

  /** Whether the broker runs a second reflector itself (else a relay's may serve as one). */
  get hasSecondary(): boolean {
    return this.reflectors.length > 1;
  }

  /**
   * An observation by a relay's reflector, standing in for the second one: kept (as slot 1) for
   * enrolled keys only, since the relay answers any key.
   */
  async observeExternal(publicKey: string, endpoint: string): Promise<void> {
    const parsed = parseEndpoint(endpoint);
    if (!parsed || this.hasSecondary || !(await this.enrolled.isEnrolled(publicKey))) return;
    this.onObserved(1, {
      publicKey,
      endpoint,
      address: parsed.host,
      port: parsed.port,
      at: Date.now(),
      via: 'initiation',
    });
  }

  /** A removed device: its observations and any cached "enrolled" answer go. */
  forget(publicKey: string): void {
    this.enrolled.set(publicKey, false);
    for (const r of this.reflectors) r.forget(publicKey);
    this.seen.delete(publicKey);
    this.written.delete(publicKey);
  }

  private onObserved(index: number, o: Observation): void {
    const slots = this.seen.get(o.publicKey) ?? [];
    slots[index] = o;
    this.seen.set(o.publicKey, slots);
    // Listeners compare with the netmap, which a changed address reaches only after the write below.
    this.notify(o.publicKey);
    const learned = this.learnedOf(slots);
    const sig = JSON.stringify(learned);
    if (this.written.get(o.publicKey) === sig) return;
    this.written.set(o.publicKey, sig);
    const previous = this.chains.get(o.publicKey) ?? Promise.resolve();
    const next = previous
      .then(() =>
        this.opts.devices.setLearned(
          { publicKey: o.publicKey },
          'reflexive',
          learned.endpoints,
          learned.mapping,
        ),
      )
      .catch((err: Error) => {
        this.written.delete(o.publicKey);
        this.opts.logger.warn({ err: err.message }, 'storing a reflexive address failed');
      });
    this.chains.set(o.publicKey, next);
    void next.then(() => {
      if (this.chains.get(o.publicKey) === next) this.chains.delete(o.publicKey);
    });
  }

  private notify(publicKey: string): void {
    for (const fn of this.listeners) {
      try {
        fn(publicKey);
      } catch (err) {
        this.opts.logger.error({ err: (err as Error).message }, 'reflector observation listener failed');
      }
    }
  }

  private learnedOf(slots: Array<Observation | undefined>): Learned {
    const endpoints = [
      ...new Set(slots.filter((s): s is Observation => s !== undefined).map((s) => s.endpoint)),
    ];
    const mapping = slots.length > 1 ? classifyNatMapping(slots[0], slots[1]) : 'unknown';
    return { endpoints, mapping: mapping === 'unknown' ? undefined : mapping };
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all(this.reflectors.map((r) => r.close()));
    await Promise.all([...this.chains.values()]);
  }
}
