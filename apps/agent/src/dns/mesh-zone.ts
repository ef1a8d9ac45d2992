import type { AccountView, AnswererOptions, ZoneView } from '@trellis/dns';
import type { NetmapPeer, NetmapSelf, NetmapVirtual } from '@trellis/proto';

/**
 * TTL of the agent's answers and of a name it does not know: it is asked on this device, so a short
 * one costs nothing, and a rename or a new device shows at once.
 */
export const MESH_DNS_TTL_SECONDS = 1;

/** The account's names as this device knows them: itself, the peers and the virtual devices it reaches. */
export interface MeshZone {
  /** The whole mesh zone (`ts.example`). */
  zone: string;
  /** This account's domain (`acme.ts.example`): the only names the agent answers itself. */
  domain: string;
  view: ZoneView;
  answerer: AnswererOptions;
}

/** What the zone needs of a virtual device. */
export type ZoneVirtual = Pick<NetmapVirtual, 'name' | 'address'>;

/**
 * The zone the agent answers from its netmap. The broker names every device
 * `<name>.<account>.<zone>`, so the zone is what follows the account in this device's own name.
 */
export function meshZoneOf(
  self: NetmapSelf,
  peers: readonly NetmapPeer[],
  serial: number,
  /** Virtual devices it routes to (planVirtual's reachable ones): a name it cannot reach is not given. */
  virtual: readonly ZoneVirtual[] = [],
): MeshZone {
  const own = `${self.name}.${self.accountName}.`.toLowerCase();
  const dnsName = self.dnsName.toLowerCase().replace(/\.$/, '');
  if (!dnsName.startsWith(own) || dnsName.length === own.length) {
    throw new Error(`device name ${self.dnsName} is not <name>.<account>.<zone>`);
  }
  const zone = dnsName.slice(own.length);
  const account = self.accountName.toLowerCase();
  const addresses = new Map<string, string>();
  // A device's name beats a virtual device's (the broker keeps them apart; a clash is its mistake).
  for (const v of virtual) addresses.set(v.name.toLowerCase(), v.address);
  for (const p of peers) addresses.set(p.name.toLowerCase(), p.address);
  addresses.set(self.name.toLowerCase(), self.address);
  const view: AccountView = {
    serial,
    meshOnly: false, // queries reach this stub only from this device
    address: (label) => addresses.get(label),
    mayAsk: () => true,
  };
  return {
    zone,
    domain: `${account}.${zone}`,
    view: { apexSerial: serial, account: (label) => (label === account ? view : undefined) },
    answerer: {
      zone,
      ttl: MESH_DNS_TTL_SECONDS,
      nameServers: [dnsName],
      hostmaster: `hostmaster.${zone}`,
    },
  };
}
