import type { CommandRunner } from '../util/command-runner';
import { runChecked } from '../util/command-runner';
import type { NetworkConfigurator } from './network-configurator';

interface IpAddrInfo {
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
  flags?: string[];
}
interface IpRoute {
  dst: string;
}

/** Linux through iproute2 (`ip -j` to read state, so every change is made only when missing). */
export class LinuxNetworkConfigurator implements NetworkConfigurator {
  /** Subnet routes this agent added (setRoutes); only these are ever removed. */
  private subnetRoutes = new Set<string>();
  constructor(private readonly runner: CommandRunner) {}

  async setRoutes(interfaceName: string, prefixes: readonly string[]): Promise<void> {
    const want = new Set(prefixes);
    if (want.size === 0 && this.subnetRoutes.size === 0) return;
    for (const p of this.subnetRoutes) {
      if (want.has(p)) continue;
      await this.runner.run('ip', ['route', 'del', p, 'dev', interfaceName]); // already gone is fine
      this.subnetRoutes.delete(p);
    }
    if (want.size === 0) return;
    const have = new Set((await this.routes(interfaceName)).map((r) => r.dst));
    for (const p of want) {
      if (!have.has(p)) await runChecked(this.runner, 'ip', ['route', 'replace', p, 'dev', interfaceName]);
      this.subnetRoutes.add(p);
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

  private async routes(interfaceName: string): Promise<IpRoute[]> {
    const out = await runChecked(this.runner, 'ip', ['-j', 'route', 'show', 'dev', interfaceName]);
    return out.trim() ? (JSON.parse(out) as IpRoute[]) : [];
  }
}
