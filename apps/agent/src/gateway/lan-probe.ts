import { parseIpv4Cidr } from '@trellis/proto';
import { type CommandRunner, runChecked } from '../util/command-runner';

/** Where traffic for a prefix leaves this device, and whether that link is usable. */
export interface LanProbe {
  /**
   * The interface of the most specific main-table route (not the default route) covering the
   * prefix's first address, when it is UP with a carrier; else null.
   */
  routeInterface(prefix: string): Promise<string | null>;
  /** The default route's interface; null without one. */
  defaultInterface(): Promise<string | null>;
  /** IPv4 subnets directly attached to this device (an exit node's clients must not reach them). */
  onLinkSubnets(): Promise<string[]>;
  /** IPv4 prefixes the kernel delivers to this device itself (its own addresses, loopback). */
  localAddresses(): Promise<string[]>;
}

const intToIpv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** Linux through `ip -j` (route show to match, link show). */
export class LinuxLanProbe implements LanProbe {
  constructor(private readonly runner: CommandRunner) {}

  async routeInterface(prefix: string): Promise<string | null> {
    const c = parseIpv4Cidr(prefix);
    if (!c) return null;
    // The main table's routes only (`route get` would follow policy rules, an exit node's among
    // them), and never the default route: a LAN that went away leaves only that one to match.
    const r = await this.runner.run('ip', ['-j', 'route', 'show', 'to', 'match', intToIpv4(c.base)]);
    if (r.code !== 0 || !r.stdout.trim()) return null;
    const routes = JSON.parse(r.stdout) as Array<{ dst?: string; dev?: string; type?: string }>;
    const bits = (dst: string) => (dst.includes('/') ? Number(dst.split('/')[1]) : 32);
    const best = routes
      .filter((x) => x.dst && x.dst !== 'default' && x.dev && (x.type ?? 'unicast') === 'unicast')
      .sort((x, y) => bits(y.dst!) - bits(x.dst!))[0];
    if (!best?.dev) return null;
    const link = await this.runner.run('ip', ['-j', 'link', 'show', 'dev', best.dev]);
    if (link.code !== 0) return null; // gone
    const flags = (JSON.parse(link.stdout) as Array<{ flags?: string[] }>)[0]?.flags ?? [];
    return flags.includes('UP') && flags.includes('LOWER_UP') ? best.dev : null;
  }

  async defaultInterface(): Promise<string | null> {
    const out = await runChecked(this.runner, 'ip', ['-j', 'route', 'show', 'default']);
    if (!out.trim()) return null;
    return (JSON.parse(out) as Array<{ dev?: string }>)[0]?.dev ?? null;
  }

  async onLinkSubnets(): Promise<string[]> {
    const out = await runChecked(this.runner, 'ip', ['-4', '-j', 'route', 'show', 'scope', 'link']);
    if (!out.trim()) return [];
    return (JSON.parse(out) as Array<{ dst?: string; type?: string }>)
      .filter((r) => r.dst && r.dst !== 'default' && (r.type ?? 'unicast') === 'unicast')
      .map((r) => (r.dst!.includes('/') ? r.dst! : `${r.dst}/32`))
      .filter((c) => parseIpv4Cidr(c) !== null);
  }

  async localAddresses(): Promise<string[]> {
    // The local table, not the interfaces' addresses: it holds every address delivered locally.
    const out = await runChecked(this.runner, 'ip', [
      '-4',
      '-j',
      'route',
      'show',
      'table',
      'local',
      'type',
      'local',
    ]);
    if (!out.trim()) return [];
    return (JSON.parse(out) as Array<{ dst?: string }>)
      .filter((r) => r.dst && r.dst !== 'default')
      .map((r) => (r.dst!.includes('/') ? r.dst! : `${r.dst}/32`))
      .filter((c) => parseIpv4Cidr(c) !== null);
  }
}
