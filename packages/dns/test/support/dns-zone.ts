import * as dnsPacket from 'dns-packet';
import type { AccountView, ZoneView } from '../../src/zone-answerer';
import { ZoneAnswerer } from '../../src/zone-answerer';

export const ZONE = 'trellis.example';

/** A zone of plain maps: account label -> device label -> address. */
export function fakeZone(
  accounts: Record<
    string,
    { serial: number; meshOnly?: boolean; devices: Record<string, string>; sources?: string[] }
  >,
): ZoneView {
  return {
    apexSerial: 1_700_000_000,
    account(label: string): AccountView | undefined {
      const a = accounts[label];
      if (!a) return undefined;
      return {
        serial: a.serial,
        meshOnly: a.meshOnly ?? false,
        address: (name) => a.devices[name],
        mayAsk: (source) => (a.sources ?? []).includes(source),
      };
    },
  };
}

export function answererFor(
  view: ZoneView,
  nameServers = ['ns1.example.net', 'ns2.example.net'],
): ZoneAnswerer {
  return new ZoneAnswerer({ zone: ZONE, ttl: 30, nameServers, hostmaster: `hostmaster.${ZONE}` }, view);
}

/** A query's bytes, as a stub resolver sends it. */
export function queryBytes(
  name: string,
  type: string,
  more: { id?: number; edns?: number | false; flags?: number; questions?: number } = {},
): Buffer {
  const questions = Array.from({ length: more.questions ?? 1 }, () => ({ name, type, class: 'IN' }));
  return dnsPacket.encode({
    type: 'query',
    id: more.id ?? 4242,
    flags: more.flags ?? dnsPacket.RECURSION_DESIRED,
    questions,
    additionals:
      more.edns === false || more.edns === undefined
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: more.edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              options: [],
            } as never,
          ],
  } as never);
}

/** The rcode of a response's bytes (extended by its OPT record, if any). */
export function rcodeOf(wire: Buffer): number {
  const low = wire.readUInt16BE(2) & 0xf;
  const p = dnsPacket.decode(wire);
  const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { extendedRcode?: number } | undefined;
  return ((opt?.extendedRcode ?? 0) << 4) | low;
}
