import { createSocket } from 'node:dgram';
import { type Parsed, parsed, rejected } from '../types';
import { retransmit } from '../udp-exchange';

// SSDP discovery of an Internet Gateway Device (UPnP Device Architecture 1.1 §1.3.2). Only answers
// from the gateway itself count, and their LOCATION must point at that same address: a description
// fetched elsewhere could steer the client into another host.

export const SSDP_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
const MAX_RESPONSE = 2048;

export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
];

export function encodeSearch(target: string, mx = 1): string {
  return [
    'M-SEARCH * HTTP/1.1',
    `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}`,
    'MAN: "ssdp:discover"',
    `MX: ${mx}`,
    `ST: ${target}`,
    '',
    '',
  ].join('\r\n');
}

export interface SsdpResponse {
  location: URL;
  searchTarget: string;
}

export function parseSearchResponse(message: Uint8Array, from: string): Parsed<SsdpResponse> {
  if (message.length > MAX_RESPONSE) return rejected('response too large');
  const text = Buffer.from(message).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return rejected('headers not terminated');
  const lines = text.slice(0, end).split('\r\n');
  if (!/^HTTP\/1\.[01] 200 [ -~]*$/.test(lines[0] ?? '')) return rejected('not a 200 response');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([ -~\t]*?)[ \t]*$/.exec(line);
    if (!m) return rejected('malformed header line');
    const name = m[1]!.toLowerCase();
    if (headers.has(name) && (name === 'location' || name === 'st')) return rejected(`duplicate ${name}`);
    headers.set(name, m[2]!);
  }
  const location = headers.get('location');
  const searchTarget = headers.get('st');
  if (!location || !searchTarget) return rejected('LOCATION or ST missing');
  if (!IGD_SEARCH_TARGETS.includes(searchTarget)) return rejected(`unexpected ST ${searchTarget}`);
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return rejected('LOCATION is not a URL');
  }
  if (url.protocol !== 'http:') return rejected('LOCATION is not http');
  if (url.hostname !== from) return rejected('LOCATION points away from the responder');
  if (url.username || url.password) return rejected('LOCATION carries credentials');
  return parsed({ location: url, searchTarget });
}

/** Multicasts the searches from `localAddress` and resolves with the gateway's first valid answer. */
export function searchGateway(
  gateway: string,
  localAddress: string,
  waitsMs: readonly number[],
): Promise<SsdpResponse | undefined> {
  const socket = createSocket({ type: 'udp4', reuseAddr: false });
  return retransmit(socket, {
    open: (ready, fail) =>
      socket.bind(0, localAddress, () => {
        try {
          socket.setMulticastInterface(localAddress);
          socket.setMulticastTTL(2);
        } catch {
          return fail();
        }
        ready();
      }),
    transmit: () => {
      for (const target of IGD_SEARCH_TARGETS) {
        socket.send(encodeSearch(target), SSDP_PORT, SSDP_ADDRESS, () => undefined);
      }
    },
    accept: (message, from) => {
      if (from.address !== gateway) return undefined;
      const result = parseSearchResponse(message, from.address);
      return result.ok ? result.value : undefined;
    },
    waitsMs,
  });
}
