import { isIP } from 'node:net';
import { type CommandRunner, runChecked } from '../util/command-runner';

/**
 * The routing table as macOS's `netstat -rn` prints it, and `route -n get`. Routes have no `proto`
 * on macOS; ours carry RTF_PROTO2 (`route add ... -proto2`, flag `2` in netstat), a flag only a
 * routing daemon would set, so a crashed run's leftovers are found and nothing else is touched.
 */
export const OUR_ROUTE_FLAG = '2';
export const OUR_ROUTE_MODIFIER = '-proto2';

export type Family = 4 | 6;

export interface DarwinRoute {
  family: Family;
  /** Canonical CIDR: `100.64.0.0/10`, `0.0.0.0/0`, `2001:db8::/32`, `192.0.2.7/32`. */
  destination: string;
  gateway: string;
  flags: string;
  netif: string;
}

/**
 * What exit routing sends into the utun: four quarters, so that a /1 reject of each half stays
 * underneath when the utun (and with it these routes) is gone: fail closed without route metrics.
 */
export const EXIT_QUADRANTS: readonly string[] = ['0.0.0.0/2', '64.0.0.0/2', '128.0.0.0/2', '192.0.0.0/2'];
/** The halves refused (`-reject`) while an exit node is wanted; IPv6 is never carried, only refused. */
export const EXIT_REJECTS: Record<Family, readonly string[]> = {
  4: ['0.0.0.0/1', '128.0.0.0/1'],
  6: ['::/1', '8000::/1'],
};

/** Whether a route carries our flag. */
export function isOurs(r: DarwinRoute): boolean {
  return r.flags.includes(OUR_ROUTE_FLAG);
}

/** Every route of one family (`netstat -rn -f inet|inet6`). */
export async function readRoutes(runner: CommandRunner, family: Family): Promise<DarwinRoute[]> {
  const out = await runChecked(runner, 'netstat', ['-rn', '-f', family === 4 ? 'inet' : 'inet6']);
  return parseNetstat(out, family);
}

/**
 * `netstat -rn` rows. The columns are found by the header (`Destination Gateway Flags Netif
 * Expire`, older releases with `Refs Use` between): every column up to Netif is always filled.
 */
export function parseNetstat(text: string, family: Family): DarwinRoute[] {
  const out: DarwinRoute[] = [];
  let netifAt = -1;
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === 'Destination') {
      netifAt = cols.indexOf('Netif');
      continue;
    }
    if (netifAt < 0 || cols.length <= netifAt) continue;
    const [dest, gateway, flags] = cols as [string, string, string];
    const destination = canonicalDestination(dest, flags, family);
    if (destination === null) continue;
    out.push({ family, destination, gateway, flags, netif: cols[netifAt]! });
  }
  return out;
}

/**
 * netstat's destination as a CIDR. IPv4 networks are printed the BSD way: trailing zero octets
 * dropped and the length left out when it is the address's class mask (`10` is 10.0.0.0/8,
 * `192.168.1` 192.168.1.0/24, `100.64/10`, `128.0/1`); a host route is the full address.
 */
export function canonicalDestination(dest: string, flags: string, family: Family): string | null {
  if (dest === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  const [addrPart, lenPart] = dest.split('/') as [string, string | undefined];
  if (family === 6) {
    const addr = addrPart.replace(/%.*$/, '');
    if (isIP(addr) !== 6) return null;
    const len = lenPart === undefined ? 128 : Number(lenPart);
    return `${canonicalIpv6(addr)}/${len}`;
  }
  const octets = addrPart.split('.');
  if (octets.length > 4 || octets.some((o) => !/^\d{1,3}$/.test(o) || Number(o) > 255)) return null;
  while (octets.length < 4) octets.push('0');
  const addr = octets.join('.');
  if (lenPart !== undefined) return /^\d{1,2}$/.test(lenPart) ? `${addr}/${Number(lenPart)}` : null;
  if (flags.includes('H')) return `${addr}/32`;
  const first = Number(octets[0]);
  return `${addr}/${first < 128 ? 8 : first < 192 ? 16 : 24}`;
}

/** IPv6 as `route` and netstat print it: compressed, lower case. */
export function canonicalIpv6(addr: string): string {
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

/** What `route -n get` says about a destination: its gateway (if any) and interface. */
export interface RouteLookup {
  gateway: string | null;
  interface: string | null;
  flags: string[];
}

/** `route -n get [-inet6] DEST`; null when no route matches (`not in table`). */
export async function routeGet(
  runner: CommandRunner,
  dest: string,
  family: Family,
): Promise<RouteLookup | null> {
  const args = ['-n', 'get', ...(family === 6 ? ['-inet6'] : []), dest];
  const r = await runner.run('route', args);
  return r.code === 0 ? parseRouteGet(r.stdout) : null;
}

export function parseRouteGet(text: string): RouteLookup | null {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z ]+):\s*(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  if (!fields.has('route to')) return null;
  const flags = /^<(.*)>$/.exec(fields.get('flags') ?? '')?.[1]?.split(',') ?? [];
  return { gateway: fields.get('gateway') ?? null, interface: fields.get('interface') ?? null, flags };
}

/** `route` arguments naming a destination: `-net CIDR` or `-host ADDR` (a /32 or /128). */
export function destinationArgs(cidr: string, family: Family): string[] {
  const [addr, len] = cidr.split('/') as [string, string];
  const host = Number(len) === (family === 4 ? 32 : 128);
  return [...(family === 6 ? ['-inet6'] : ['-inet']), host ? '-host' : '-net', host ? addr : cidr];
}
