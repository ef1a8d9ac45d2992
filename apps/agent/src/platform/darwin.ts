import { isIPv4 } from 'node:net';
import type { KeepOut } from '../routes/route-selector';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { UtunName } from './darwin-interface';
import {
  type DarwinRoute,
  destinationArgs,
  EXIT_QUADRANTS,
  type Family,
  isOurs,
  OUR_ROUTE_MODIFIER,
  readRoutes,
  routeGet,
} from './darwin-routes';
import { defaultNameservers, parseScutilDns } from './darwin-scutil';
import type { NetworkConfigurator } from './network-configurator';

/** What `ifconfig utunN` says: its flags and IPv4 addresses. */
export interface IfconfigInfo {
  flags: string[];
  inet: string[];
}

/**
 * macOS through ifconfig and route, state read back with `ifconfig` and `netstat -rn`, so every
 * change is made only when missing. The interface given is the agent's logical name, mapped to the
 * utun WireGuard got. Subnet routes carry RTF_PROTO2 (darwin-routes.ts): a crashed run's are
 * found by it; the overlay route, like on Linux, does not (setRoutes never touches it) and goes
 * with the utun. Every route through a utun vanishes with it when wireguard-go exits.
 */
export class DarwinNetworkConfigurator implements NetworkConfigurator {
  constructor(
    private readonly utun: UtunName,
    private readonly runner: CommandRunner,
  ) {}

  async apply(interfaceName: string, address: string, overlayPrefix: string): Promise<void> {
    const utun = this.utun.resolve(interfaceName);
    const info = parseIfconfig(await runChecked(this.runner, 'ifconfig', [utun]));
    for (const old of info.inet) {
      // An old overlay address (the broker re-addressed us) must not linger.
      if (old !== address) await runChecked(this.runner, 'ifconfig', [utun, 'inet', old, '-alias']);
    }
    if (!info.inet.includes(address)) {
      await runChecked(this.runner, 'ifconfig', [
        utun,
        'inet',
        address,
        address,
        'netmask',
        '255.255.255.255',
        'alias',
      ]);
    }
    if (!info.flags.includes('UP')) await runChecked(this.runner, 'ifconfig', [utun, 'up']);
    const routes = await readRoutes(this.runner, 4);
    if (!routes.some((r) => r.destination === overlayPrefix && r.netif === utun)) {
      await runChecked(this.runner, 'route', [
        '-n',
        'add',
        '-inet',
        '-net',
        overlayPrefix,
        '-interface',
        utun,
      ]);
    }
  }

  async remove(interfaceName: string, overlayPrefix: string | null): Promise<void> {
    const utun = this.utun.tryResolve(interfaceName);
    await this.syncRoutes(utun, []);
    if (!utun) return; // WireGuard is gone, and with its utun every route through it
    const routes = await readRoutes(this.runner, 4);
    if (overlayPrefix && routes.some((r) => r.destination === overlayPrefix && r.netif === utun)) {
      await this.runner.run('route', ['-n', 'delete', '-inet', '-net', overlayPrefix, '-interface', utun]);
    }
    await this.runner.run('ifconfig', [utun, 'down']);
  }

  setRoutes(interfaceName: string, prefixes: readonly string[]): Promise<void> {
    return this.syncRoutes(this.utun.resolve(interfaceName), prefixes);
  }

  /** Ours are subnet routes through a utun with our flag; a prefix another route has is left to it. */
  private async syncRoutes(utun: string | null, prefixes: readonly string[]): Promise<void> {
    const want = new Set(prefixes);
    for (const family of [4, 6] as const) {
      const wanted = [...want].filter((p) => familyOf(p) === family);
      const routes = await readRoutes(this.runner, family);
      for (const r of routes.filter(isOurSubnetRoute)) {
        if (want.has(r.destination) && r.netif === utun) continue;
        // One unscoped route per destination on macOS: with our flag on it, it is ours.
        await this.runner.run('route', ['-n', 'delete', ...destinationArgs(r.destination, family)]);
      }
      if (utun === null) continue;
      for (const p of wanted) {
        if (routes.some((r) => r.destination === p && (!isOurs(r) || r.netif === utun))) continue;
        await runChecked(this.runner, 'route', [
          '-n',
          'add',
          ...destinationArgs(p, family),
          '-interface',
          utun,
          OUR_ROUTE_MODIFIER,
        ]);
      }
    }
  }

  /** The default gateway (`route -n get default`) and the default resolvers' servers (`scutil --dns`). */
  async keepOutHosts(): Promise<KeepOut[]> {
    const out: KeepOut[] = [];
    const def = await routeGet(this.runner, 'default', 4);
    if (def?.gateway && isIPv4(def.gateway)) out.push({ address: def.gateway, what: 'the default gateway' });
    const r = await this.runner.run('scutil', ['--dns']);
    const servers = r.code === 0 ? defaultNameservers(parseScutilDns(r.stdout)) : [];
    for (const ns of servers) {
      if (isIPv4(ns) && !out.some((k) => k.address === ns)) out.push({ address: ns, what: 'the DNS server' });
    }
    return out;
  }
}

/** The exit routing's shapes (darwin-routes' exit quadrants, rejects, host bypasses) are not subnet routes. */
function isOurSubnetRoute(r: DarwinRoute): boolean {
  return (
    isOurs(r) &&
    /^utun\d+$/.test(r.netif) &&
    !/[GRB]/.test(r.flags) &&
    !EXIT_QUADRANTS.includes(r.destination)
  );
}

function familyOf(prefix: string): Family {
  return prefix.includes(':') ? 6 : 4;
}

/** `utun4: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1420` and `inet A --> B netmask 0x…` lines. */
export function parseIfconfig(text: string): IfconfigInfo {
  const flags = /flags=[0-9a-f]+<([^>]*)>/i.exec(text)?.[1]?.split(',') ?? [];
  const inet: string[] = [];
  for (const m of text.matchAll(/^\s+inet (\d+\.\d+\.\d+\.\d+)\b/gm)) inet.push(m[1]!);
  return { flags, inet };
}
