import type { CommandRunner } from './command-runner';

/** Where a packet to an address leaves: the device and the neighbour it is handed to. */
export interface Route {
  device: string;
  nextHop: string;
}

/** Null: the kernel does not forward to it (a local address, a blackhole): the process does. */
export type RouteLookup = (address: string) => Promise<Route | null>;

/** Device names nftables is given in quotes: refuse anything that could break out of them. */
const DEVICE_NAME = /^[\w.@:+-]{1,15}$/;

/** The kernel's answer to `ip route get`; only ordinary unicast routes are forwarded to. */
export function ipRouteLookup(run: CommandRunner): RouteLookup {
  return async (address) => {
    const out = await run('ip', ['-j', 'route', 'get', address]);
    const [route] = JSON.parse(out) as Array<{ type?: string; gateway?: string; dev?: string }>;
    if (!route?.dev) throw new Error(`no route to ${address}`);
    if (route.type !== undefined && route.type !== 'unicast') return null;
    if (!DEVICE_NAME.test(route.dev)) throw new Error(`unexpected device name ${route.dev}`);
    return { device: route.dev, nextHop: route.gateway ?? address };
  };
}
