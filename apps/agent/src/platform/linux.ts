import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { KeepOut } from '../routes/route-selector';
import type { CommandRunner } from '../util/command-runner';
import { runChecked } from '../util/command-runner';
import type { NetworkConfigurator } from './network-configurator';
import { nameserversOf } from './resolv-conf';

/** Where the DNS servers are named: resolved's upstream list when it runs, else resolv.conf. */
const RESOLV_CONFS = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];
/** How a managed resolv.conf keeps the original nameserver lines (resolv-conf.ts). */
const KEPT_LINE = /^#trellis# /gm;

interface IpAddrInfo {
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
  flags?: string[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
}

/**
 * The `proto` our subnet routes carry (0x74, 't'; unnamed in rt_protos): ours are found by it,
 * a crashed run's leftovers included, and routes of any other proto are never touched.
 */
export const ROUTE_PROTO = 116;

/** Linux through iproute2 (`ip -j` to read state, so every change is made only when missing). */
export class LinuxNetworkConfigurator implements NetworkConfigurator {
  constructor(
    private readonly runner: CommandRunner,
    private readonly resolvConfs: readonly string[] = RESOLV_CONFS,
  ) {}

  async keepOutHosts(): Promise<KeepOut[]> {
    const out: KeepOut[] = [];
    for (const r of await this.show(['default'])) {
      if (r.gateway && isIPv4(r.gateway)) out.push({ address: r.gateway, what: 'the default gateway' });
    }
    for (const path of this.resolvConfs) {
      const text = await readFile(path, 'utf8').catch(() => '');
      for (const ns of nameserversOf(text.replace(KEPT_LINE, ''))) {
        if (isIPv4(ns.address) && !out.some((k) => k.address === ns.address)) {
          out.push({ address: ns.address, what: 'the DNS server' });
        }
      }
    }
    return out;
  }

  /** Ours carry ROUTE_PROTO; a prefix another proto already routes in main is left to it. */
  async setRoutes(interfaceName: string, prefixes: readonly string[]): Promise<void> {
    const want = new Set(prefixes);
    const proto = String(ROUTE_PROTO);
    const main = await this.show(['table', 'main']);
    const ours = main.filter((r) => String(r.protocol) === proto);
    for (const r of ours) {
      if (want.has(r.dst) && r.dev === interfaceName) continue;
      // Matching on proto: only our own route of that prefix goes. Already gone is fine.
      await this.runner.run('ip', ['route', 'del', r.dst, 'proto', proto, ...(r.dev ? ['dev', r.dev] : [])]);
    }
    for (const p of want) {
      if (main.some((r) => r.dst === p && (String(r.protocol) !== proto || r.dev === interfaceName)))
        continue;
      await runChecked(this.runner, 'ip', ['route', 'add', p, 'dev', interfaceName, 'proto', proto]);
    }
  }

  async apply(interfaceName: string, address: string, overlayPrefix: string): Promise<void> {
    const link = await this.linkInfo(interfaceName);
    const want = `${address}/32`;
    const have = (link.addr_info ?? []).filter((a) => a.family === 'inet');
    for (const a of have) {
      const cidr = `${a.local}/${a.prefixlen}`;
      // An old overlay address (the broker re-addressed us) must not linger.
      if (cidr !== want) await runChecked(this.runner, 'ip', ['addr', 'del', cidr, 'dev', interfaceName]);
    }
    if (!have.some((a) => `${a.local}/${a.prefixlen}` === want)) {
      await runChecked(this.runner, 'ip', ['addr', 'add', want, 'dev', interfaceName]);
    }
    if (!(link.flags ?? []).includes('UP')) {
      await runChecked(this.runner, 'ip', ['link', 'set', interfaceName, 'up']);
    }
    const routes = await this.routes(interfaceName);
    if (!routes.some((r) => r.dst === overlayPrefix)) {
      await runChecked(this.runner, 'ip', ['route', 'replace', overlayPrefix, 'dev', interfaceName]);
    }
  }

  async remove(interfaceName: string, overlayPrefix: string | null): Promise<void> {
    await this.setRoutes(interfaceName, []);
    if (overlayPrefix) await this.runner.run('ip', ['route', 'del', overlayPrefix, 'dev', interfaceName]);
    await this.runner.run('ip', ['link', 'set', interfaceName, 'down']);
  }

  private async linkInfo(interfaceName: string): Promise<IpAddrInfo> {
    const out = await runChecked(this.runner, 'ip', ['-j', 'addr', 'show', 'dev', interfaceName]);
    const parsed = JSON.parse(out) as IpAddrInfo[];
    if (!parsed[0]) throw new Error(`interface ${interfaceName} does not exist`);
    return parsed[0];
  }

  private routes(interfaceName: string): Promise<IpRoute[]> {
    return this.show(['dev', interfaceName]);
  }

  private async show(filter: string[]): Promise<IpRoute[]> {
    const out = await runChecked(this.runner, 'ip', ['-j', 'route', 'show', ...filter]);
    return out.trim() ? (JSON.parse(out) as IpRoute[]) : [];
  }
}
