import type { NetmapPeer, NetmapVirtual, VirtualStatus } from '@trellis/proto';
import type { Logger } from 'pino';
import type { Netmap } from '../control/netmap-tracker';

/** A virtual device this device reaches: its address rides on its gateway's tunnel. */
export interface ReachableVirtual extends NetmapVirtual {
  /** The gateway's name (for status). */
  gatewayName: string;
}

export interface VirtualPlan {
  reachable: ReachableVirtual[];
  /** Each virtual device left out, and why. */
  skipped: Array<{ vd: NetmapVirtual; gatewayName: string | null; kind: SkipKind; reason: string }>;
}

/** Why one is left out: served here, its address is another's, its gateway is absent or refused. */
export type SkipKind = 'self' | 'clash' | 'absent' | 'refused';

export const NO_VIRTUAL: VirtualPlan = { reachable: [], skipped: [] };

/**
 * Which of the netmap's virtual devices this device routes to. Its gateway must be a peer this
 * device put in WireGuard (`trusted`: the key-pin checks passed), and not this device (a gateway
 * reaches its own on the LAN). An address another device, or an earlier virtual device, already has
 * is never routed: a second owner of an address would take its traffic (and break the firewall).
 */
export function planVirtual(netmap: Netmap, trusted: readonly NetmapPeer[]): VirtualPlan {
  const byId = new Map(netmap.peers.map((p) => [p.id, p]));
  const trustedIds = new Set(trusted.map((p) => p.id));
  const taken = new Map<string, string>([[netmap.self.address, `this device (${netmap.self.name})`]]);
  for (const p of netmap.peers) {
    taken.set(p.address, `peer ${p.name}`);
    for (const cidr of p.allowedIps) {
      if (cidr.endsWith('/32')) taken.set(cidr.slice(0, -3), `peer ${p.name}`);
    }
  }
  const plan: VirtualPlan = { reachable: [], skipped: [] };
  const sorted = [...netmap.virtual].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const vd of sorted) {
    const gateway = byId.get(vd.via);
    const gatewayName = vd.via === netmap.self.id ? netmap.self.name : (gateway?.name ?? null);
    const skip = (kind: SkipKind, reason: string) => plan.skipped.push({ vd, gatewayName, kind, reason });
    const owner = taken.get(vd.address);
    if (vd.via === netmap.self.id) skip('self', 'served by this device');
    else if (owner !== undefined) skip('clash', `its address ${vd.address} is also ${owner}: ignored`);
    else if (!gateway) skip('absent', 'its gateway is not in the netmap');
    else if (!trustedIds.has(gateway.id)) {
      skip('refused', `its gateway ${gateway.name} is refused (its key does not match its pin)`);
    } else {
      plan.reachable.push({ ...vd, gatewayName: gateway.name });
      taken.set(vd.address, `virtual device ${vd.name}`);
    }
  }
  return plan;
}

/** The /32s a gateway peer carries for the virtual devices behind it. */
export function virtualAllowedIps(reachable: readonly ReachableVirtual[], peerId: string): string[] {
  return reachable.filter((v) => v.via === peerId).map((v) => `${v.address}/32`);
}

/** Status rows: every virtual device of the netmap, reachable or why not. */
export function virtualStatus(plan: VirtualPlan, netmap: Netmap): VirtualStatus[] {
  const online = new Map(netmap.peers.map((p) => [p.id, p.online]));
  const rows: VirtualStatus[] = [
    ...plan.reachable.map((v) => {
      const up = online.get(v.via) === true;
      return {
        id: v.id,
        name: v.name,
        dnsName: v.dnsName,
        address: v.address,
        via: v.gatewayName,
        reachable: up,
        ...(up ? {} : { reason: `its gateway ${v.gatewayName} is offline` }),
      };
    }),
    ...plan.skipped.map(({ vd, gatewayName, reason }) => ({
      id: vd.id,
      name: vd.name,
      dnsName: vd.dnsName,
      address: vd.address,
      via: gatewayName,
      reachable: false,
      reason,
    })),
  ];
  return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * A session's virtual devices: planned again on every mesh apply (as the peers' trust is), each
 * address clash logged once while it lasts (the broker handed out one address twice).
 */
export class VirtualDevices {
  private plan: VirtualPlan = NO_VIRTUAL;
  private reported = new Set<string>();

  constructor(private readonly log: Logger) {}

  update(netmap: Netmap, trusted: readonly NetmapPeer[]): VirtualPlan {
    this.plan = planVirtual(netmap, trusted);
    const now = new Set<string>();
    for (const s of this.plan.skipped) {
      if (s.kind !== 'clash') continue;
      const key = `${s.vd.id} ${s.vd.address}`;
      now.add(key);
      if (this.reported.has(key)) continue;
      this.log.error(
        { virtualDevice: s.vd.name, address: s.vd.address, reason: s.reason },
        'virtual device ignored: its address belongs to another device',
      );
    }
    this.reported = now;
    return this.plan;
  }

  /** The /32s of the virtual devices behind a peer, as last applied. */
  allowedIps(peerId: string): string[] {
    return virtualAllowedIps(this.plan.reachable, peerId);
  }

  status(netmap: Netmap | null): VirtualStatus[] {
    return netmap ? virtualStatus(this.plan, netmap) : [];
  }
}
