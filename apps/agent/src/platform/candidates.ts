import { networkInterfaces } from 'node:os';
import { ipv4InCidr, OVERLAY_PREFIX } from '@trellis/proto';

/** This device's LAN candidates: IPv4, not loopback, not the overlay itself, with our listen port. */
export function localCandidates(
  wireguardInterface: string,
  listenPort: number,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  const out = new Set<string>();
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (name === wireguardInterface) continue;
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      if (ipv4InCidr(a.address, OVERLAY_PREFIX)) continue;
      out.add(`${a.address}:${listenPort}`);
    }
  }
  return [...out].sort();
}

/** Every address this device has now, any family, loopback included (is a socket's own one still ours?). */
export function localAddresses(
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): Set<string> {
  return new Set(Object.values(interfaces).flatMap((addrs) => (addrs ?? []).map((a) => a.address)));
}

/** A source of "the network may have changed" events; returns a function that stops it. */
export type NetworkChangeEvents = (onChange: () => void) => () => void;

/**
 * Re-reads the candidates every interval and reports them when they change; with `events` (netlink
 * on Linux) it re-reads at once on each event, so an added address triggers re-discovery at once.
 */
export class CandidateWatcher {
  private timer: NodeJS.Timeout | null = null;
  private stopEvents: (() => void) | null = null;
  private last = '';

  constructor(
    private readonly read: () => string[],
    private readonly onChange: (candidates: string[]) => void,
    private readonly intervalMs = 2000,
    private readonly events?: NetworkChangeEvents,
  ) {}

  start(): void {
    if (this.timer) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.stopEvents = this.events?.(() => this.check()) ?? null;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopEvents?.();
    this.stopEvents = null;
    this.last = '';
  }

  current(): string[] {
    return this.read();
  }

  private check(): void {
    const now = this.read();
    const key = now.join(',');
    if (key === this.last) return;
    this.last = key;
    this.onChange(now);
  }
}

/** IPv4 subnets this device is directly attached to (CIDR), excluding loopback and the overlay. */
export function localSubnets(
  wireguardInterface: string,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  const out: string[] = [];
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (name === wireguardInterface) continue;
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal || !a.cidr) continue;
      if (ipv4InCidr(a.address, OVERLAY_PREFIX)) continue;
      out.push(a.cidr);
    }
  }
  return out;
}
