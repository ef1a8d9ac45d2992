import { isIPv4 } from 'node:net';
import type { KeepOut } from '../routes/route-selector';
import type { CommandRunner } from '../util/command-runner';
import type { NetworkConfigurator } from './network-configurator';
import {
  asArray,
  checkAddress,
  checkAlias,
  checkPrefix,
  psString,
  readPowerShellJson,
  runPowerShellLines,
} from './powershell';

/**
 * The RouteMetric our subnet routes carry (116 like the Linux proto): ours are the routes with it
 * on our adapter; another adapter's are another program's, whatever their metric. A crashed run's
 * went with its adapter (wireguard-nt removes it when the process ends). Windows gives its own
 * routes 256 and DHCP's default routes 0 or 25+.
 */
export const ROUTE_METRIC = 116;
/** The overlay prefix's route: not ROUTE_METRIC, so setRoutes never takes it for a subnet route. */
export const OVERLAY_ROUTE_METRIC = 0;
/** Routes we add live in the active store only: a reboot never brings them back. */
const STORE = '-PolicyStore ActiveStore';

export interface NetRoute {
  prefix: string;
  nextHop: string;
  metric: number;
  ifIndex: number;
}

interface InterfaceState {
  ifIndex: number;
  dadTransmits: number;
  addresses: Array<{ address: string; prefixLength: number; origin: string }>;
  routes: NetRoute[] | NetRoute | null;
}

interface RouteTable {
  ifIndex: number | null;
  routes: NetRoute[] | NetRoute | null;
}

/** `[pscustomobject]` of a route, as every read script prints it. */
export const ROUTE_OBJECT =
  '[pscustomobject]@{ prefix = $_.DestinationPrefix; nextHop = $_.NextHop; metric = [int]$_.RouteMetric; ifIndex = [int]$_.ifIndex }';

/**
 * Windows through the NetTCPIP cmdlets (the IP Helper API underneath): one script reads the state
 * as JSON, one applies the difference. The WireGuard adapter (wireguard-nt) is named by the agent's
 * interface name, so it is addressed by that alias.
 */
export class WindowsNetworkConfigurator implements NetworkConfigurator {
  constructor(private readonly runner: CommandRunner) {}

  async keepOutHosts(): Promise<KeepOut[]> {
    const script = [
      // The active store only: a persistent copy of a default route is not one Windows routes by.
      `$g = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0' ${STORE} -ErrorAction SilentlyContinue | Sort-Object RouteMetric | ForEach-Object { $_.NextHop })`,
      '$d = @(Get-DnsClientServerAddress -AddressFamily IPv4 -ErrorAction SilentlyContinue | ForEach-Object { $_.ServerAddresses })',
      'ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ gateways = $g; dns = $d })',
    ].join('\n');
    const r = await readPowerShellJson<{ gateways: string[] | string; dns: string[] | string }>(
      this.runner,
      script,
    );
    const out: KeepOut[] = [];
    const add = (address: string, what: string) => {
      if (isIPv4(address) && address !== '0.0.0.0' && !out.some((k) => k.address === address)) {
        out.push({ address, what });
      }
    };
    for (const g of asArray(r?.gateways)) add(g, 'the default gateway');
    for (const d of asArray(r?.dns)) add(d, 'the DNS server');
    return out;
  }

  /** Ours: ROUTE_METRIC on our adapter. A prefix another route already covers exactly is left to it. */
  async setRoutes(interfaceName: string, prefixes: readonly string[]): Promise<void> {
    const alias = psString(checkAlias(interfaceName));
    const want = new Set(prefixes.map(checkPrefix));
    const table = await readPowerShellJson<RouteTable>(
      this.runner,
      [
        `$if = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv4 -ErrorAction SilentlyContinue`,
        `$r = @(Get-NetRoute -AddressFamily IPv4 ${STORE} -ErrorAction SilentlyContinue | ForEach-Object { ${ROUTE_OBJECT} })`,
        'ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ ifIndex = $(if ($if) { [int]$if.ifIndex } else { $null }); routes = $r })',
      ].join('\n'),
    );
    const ifIndex = table?.ifIndex ?? null;
    const routes = asArray(table?.routes);
    const lines: string[] = [];
    const ours = routes.filter((r) => r.metric === ROUTE_METRIC && r.ifIndex === ifIndex);
    for (const r of ours) if (!want.has(r.prefix)) lines.push(removeRoute(r, true));
    for (const p of want) {
      // Ours already, or another route's (any adapter, any metric): nothing to add.
      if (routes.some((r) => r.prefix === p)) continue;
      if (ifIndex === null) throw new Error(`interface ${interfaceName} does not exist`);
      lines.push(addRoute(ifIndex, p, ROUTE_METRIC));
    }
    await runPowerShellLines(this.runner, lines);
  }

  async apply(interfaceName: string, address: string, overlayPrefix: string): Promise<void> {
    const alias = psString(checkAlias(interfaceName));
    const self = checkAddress(address);
    const overlay = checkPrefix(overlayPrefix);
    const state = await readPowerShellJson<InterfaceState>(
      this.runner,
      [
        // Stops the script (and apply) when the adapter is missing.
        `$if = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv4`,
        '$a = @(Get-NetIPAddress -InterfaceIndex $if.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | ForEach-Object { [pscustomobject]@{ address = $_.IPAddress; prefixLength = [int]$_.PrefixLength; origin = [string]$_.PrefixOrigin } })',
        `$r = @(Get-NetRoute -InterfaceIndex $if.ifIndex -AddressFamily IPv4 ${STORE} -ErrorAction SilentlyContinue | ForEach-Object { ${ROUTE_OBJECT} })`,
        'ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ ifIndex = [int]$if.ifIndex; dadTransmits = [int]$if.DadTransmits; addresses = $a; routes = $r })',
      ].join('\n'),
    );
    if (!state) throw new Error(`interface ${interfaceName} does not exist`);
    const ix = state.ifIndex;
    const lines: string[] = [];
    // Duplicate address detection would keep the new address tentative (unusable) for a second.
    if (state.dadTransmits !== 0) {
      lines.push(`Set-NetIPInterface -InterfaceIndex ${ix} -AddressFamily IPv4 -DadTransmits 0 ${STORE}`);
    }
    const have = asArray(state.addresses);
    for (const a of have) {
      // An old overlay address (the broker re-addressed us) must not linger; APIPA is Windows' own.
      if (a.origin === 'WellKnown' || a.address.startsWith('169.254.')) continue;
      if (a.address === self && a.prefixLength === 32) continue;
      lines.push(
        `Remove-NetIPAddress -InterfaceIndex ${ix} -IPAddress ${psString(a.address)} -Confirm:$false`,
      );
    }
    if (!have.some((a) => a.address === self && a.prefixLength === 32)) {
      lines.push(
        `New-NetIPAddress -InterfaceIndex ${ix} -IPAddress ${psString(self)} -PrefixLength 32 ${STORE} | Out-Null`,
      );
    }
    if (!asArray(state.routes).some((r) => r.prefix === overlay)) {
      lines.push(addRoute(ix, overlay, OVERLAY_ROUTE_METRIC));
    }
    await runPowerShellLines(this.runner, lines);
  }

  async remove(interfaceName: string, overlayPrefix: string | null): Promise<void> {
    await this.setRoutes(interfaceName, []);
    const alias = psString(checkAlias(interfaceName));
    const lines = [
      // The adapter may be gone already (the backend removed it): nothing left to take away then.
      `$if = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv4 -ErrorAction SilentlyContinue`,
      'if (-not $if) { exit 0 }',
    ];
    if (overlayPrefix) {
      lines.push(
        `Remove-NetRoute -InterfaceIndex $if.ifIndex -DestinationPrefix ${psString(checkPrefix(overlayPrefix))} ${STORE} -Confirm:$false -ErrorAction SilentlyContinue`,
      );
    }
    lines.push(
      "Get-NetIPAddress -InterfaceIndex $if.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | Where-Object { $_.PrefixOrigin -eq 'Manual' } | Remove-NetIPAddress -Confirm:$false -ErrorAction SilentlyContinue",
    );
    await runPowerShellLines(this.runner, [lines.join('\n')]);
  }
}

/** `New-NetRoute` of a prefix into an interface (no gateway: WireGuard is point-to-point). */
export function addRoute(ifIndex: number, prefix: string, metric: number): string {
  const onLink = prefix.includes(':') ? '::' : '0.0.0.0';
  return `New-NetRoute -InterfaceIndex ${ifIndex} -DestinationPrefix ${psString(prefix)} -NextHop ${psString(onLink)} -RouteMetric ${metric} ${STORE} | Out-Null`;
}

/** `Remove-NetRoute` of exactly that route (interface, prefix and next hop). */
export function removeRoute(r: NetRoute, goneIsFine = false): string {
  const tail = goneIsFine ? ' -ErrorAction SilentlyContinue' : '';
  return `Remove-NetRoute -InterfaceIndex ${r.ifIndex} -DestinationPrefix ${psString(checkPrefix(r.prefix))} -NextHop ${psString(checkAddress(r.nextHop))} ${STORE} -Confirm:$false${tail}`;
}
