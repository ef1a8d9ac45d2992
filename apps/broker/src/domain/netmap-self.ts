import type {
  DeviceState,
  HostedAccess,
  HostedVirtual,
  NetmapRelay,
  NetmapSelf,
  PeerRoute,
  ReflectorInfo,
} from '@trellis/proto';
import { ipv4ToInt, OVERLAY_PREFIX } from '@trellis/proto';
import type { PeerRelation } from './netmap-policy';

/** What a device is told about itself: who it is, where to probe, and what the broker saw of it. */
export function selfOf(
  state: DeviceState,
  dnsName: string,
  accountName: string,
  reflectors: readonly ReflectorInfo[],
  relays: readonly NetmapRelay[],
): NetmapSelf {
  const self: NetmapSelf = {
    id: state.id,
    name: state.name,
    dnsName,
    address: state.address,
    accountName,
    overlayPrefix: OVERLAY_PREFIX,
  };
  if (reflectors.length > 0) self.reflectors = [...reflectors];
  if (relays.length > 0) self.relays = [...relays];
  const reflexive = (state.learned ?? []).filter((c) => c.kind === 'reflexive').map((c) => c.endpoint);
  if (reflexive.length > 0) self.reflexive = reflexive;
  if (state.mappingType) self.mappingType = state.mappingType;
  if (state.routes) self.routes = state.routes.map((r) => ({ prefix: r.prefix, approved: r.approved }));
  return self;
}

/** NetmapSelf.relays holds at most this many. */
const MAX_NETMAP_RELAYS = 32;

/** What every device's self carries of the account: the reflectors to probe, the relays it may use. */
export class SharedSelfParts {
  private relays: readonly NetmapRelay[] = [];

  constructor(private reflectors: readonly ReflectorInfo[]) {}

  /** A new reflector list (a relay's reflector came or went); true when it changed. */
  setReflectors(reflectors: readonly ReflectorInfo[]): boolean {
    if (JSON.stringify(reflectors) === JSON.stringify(this.reflectors)) return false;
    this.reflectors = [...reflectors];
    return true;
  }

  /** A new relay list; true when it changed. */
  setRelays(relays: readonly NetmapRelay[]): boolean {
    const next = relays.slice(0, MAX_NETMAP_RELAYS);
    if (JSON.stringify(next) === JSON.stringify(this.relays)) return false;
    this.relays = next;
    return true;
  }

  selfOf(state: DeviceState, dnsName: string, accountName: string): NetmapSelf {
    return selfOf(state, dnsName, accountName, this.reflectors, this.relays);
  }
}

const selfRoutes = (s: DeviceState) => (s.routes ?? []).map((r) => [r.prefix, r.approved]);

/** Whether what a device sees of itself (NetmapSelf) is unchanged: its name, address, NAT view, its routes. */
export function sameSelfView(a: DeviceState, b: DeviceState): boolean {
  return (
    a.name === b.name &&
    a.address === b.address &&
    JSON.stringify(a.learned ?? []) === JSON.stringify(b.learned ?? []) &&
    (a.mappingType ?? null) === (b.mappingType ?? null) &&
    JSON.stringify(selfRoutes(a)) === JSON.stringify(selfRoutes(b))
  );
}

/** NetmapPeer.routes: what the device forwards now (approved and up); absent when nothing. */
export function servedRoutes(state: DeviceState): { routes?: PeerRoute[] } {
  const routes = (state.routes ?? [])
    .filter((r) => r.approved && !r.down)
    .map((r) => ({ prefix: r.prefix, since: r.since }));
  return routes.length > 0 ? { routes } : {};
}

/** A virtual device a gateway serves, with its class. */
export interface HostedEntry {
  state: DeviceState;
  cls: number;
}

/**
 * NetmapSelf.virtualDevices of gateway `gatewayId`: for each virtual device (by address), who may
 * open what on it, grouped by class as a snapshot's access is. The gateway itself is left out: it
 * reaches the LAN host directly.
 */
export function hostedVirtuals(
  gatewayId: string,
  vds: readonly HostedEntry[],
  members: ReadonlyMap<number, ReadonlySet<string>>,
  relation: (viewer: number, peer: number) => PeerRelation | null,
): HostedVirtual[] {
  const ordered = [...vds].sort((a, b) => ipv4ToInt(a.state.address)! - ipv4ToInt(b.state.address)!);
  return ordered.map(({ state, cls }) => {
    const access: HostedAccess[] = [];
    for (const [peerCls, ids] of members) {
      const rel = relation(cls, peerCls);
      if (rel === null || rel.in.length === 0) continue;
      const peers = [...ids].filter((id) => id !== state.id && id !== gatewayId);
      if (peers.length > 0) access.push({ peers, in: rel.in });
    }
    return { id: state.id, name: state.name, address: state.address, lanAddress: state.lanAddress!, access };
  });
}

/** What HostedSelves needs of the account's netmap (its policy may be replaced: asked each time). */
export interface HostingContext {
  /** Gateway ids named by virtual devices, and the virtual devices naming one. */
  gateways(): Iterable<string>;
  hostedBy(gatewayId: string): Iterable<string>;
  /** A device of the netmap with its class (undefined: not in it). */
  entry(id: string): HostedEntry | undefined;
  members: ReadonlyMap<number, ReadonlySet<string>>;
  relation(viewer: number, peer: number): PeerRelation | null;
}

/**
 * The gateways' NetmapSelf.virtualDevices, and the text each was last compared with, to tell which
 * gateways need their self again after a change elsewhere (who may reach their virtual devices).
 */
export class HostedSelves {
  private readonly texts = new Map<string, string>();

  constructor(private readonly ctx: HostingContext) {}

  /** A device's list now (undefined: it serves no virtual device). */
  of(id: string): HostedVirtual[] | undefined {
    const vds = [...this.ctx.hostedBy(id)].flatMap((v) => this.ctx.entry(v) ?? []);
    if (vds.length === 0) return undefined;
    return hostedVirtuals(id, vds, this.ctx.members, this.ctx.relation);
  }

  forget(id: string): void {
    this.texts.delete(id);
  }

  /** The gateways whose list differs from the last one compared, each remembered for next time. */
  changed(): string[] {
    const out: string[] = [];
    for (const id of new Set([...this.texts.keys(), ...this.ctx.gateways()])) {
      if (this.ctx.entry(id) === undefined) {
        this.texts.delete(id);
        continue;
      }
      const list = this.of(id);
      const text = JSON.stringify(list ?? null);
      if (text === (this.texts.get(id) ?? 'null')) continue;
      if (list === undefined) this.texts.delete(id);
      else this.texts.set(id, text);
      out.push(id);
    }
    return out;
  }
}
