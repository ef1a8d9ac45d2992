import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NetnsLab, waitFor } from '../../../noise/test/support/netns-lab';

// A home router in network namespaces: `trl-pm-<pid>` is the router (WAN 11.0.0.1 towards the
// "internet" namespace, LAN 10.0.0.1 and 10.0.1.1), `-lan` a host at 10.0.0.2 behind it, `-lan2` one at
// 10.0.1.2, `-inet` a host at 11.0.0.2
// outside. The router masquerades (port-restricted cone, NATLAB.md), drops unsolicited input, and runs
// Debian's miniupnpd with NAT-PMP/PCP and UPnP-IGD on its nftables backend.
// The WAN address must look public: miniupnpd refuses to map on a private or reserved one.

const run = promisify(execFile);

export const WAN_IP = '11.0.0.1';
export const INTERNET_IP = '11.0.0.2';
export const LAN_IP = '10.0.0.2';
export const ROUTER_LAN_IP = '10.0.0.1';
/** A second LAN segment (its own router port), for two hosts wanting the same external port. */
export const LAN2_IP = '10.0.1.2';
export const ROUTER_LAN2_IP = '10.0.1.1';

// The chains miniupnpd's nftables backend fills (names set in its config below); it does not create
// them itself (Debian ships nft_init.sh for that). Inbound UDP reaching the router's own input is
// counted, which tells a test that a packet was not forwarded anywhere.
const RULESET = `
table inet filter {
  counter wan_udp_in {}
  chain input { type filter hook input priority filter; policy drop;
    iifname "lo" accept; iifname { "lan0", "lan1" } accept; ct state established,related accept;
    iifname "wan0" meta l4proto udp counter name wan_udp_in; }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept; iifname { "lan0", "lan1" } oifname "wan0" accept; jump miniupnpd; }
  chain miniupnpd {}
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd; oifname "wan0" masquerade; }
  chain prerouting_miniupnpd {}
  chain postrouting_miniupnpd {}
}
`;

const config = (dir: string) => `
ext_ifname=wan0
listening_ip=lan0
listening_ip=lan1
http_port=5000
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
min_lifetime=2
max_lifetime=86400
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
lease_file=${dir}/leases
allow 1024-65535 10.0.0.0/23 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`;

export class MiniupnpdLab {
  private log = '';

  private constructor(
    readonly lab: NetnsLab,
    readonly lan: string,
    readonly lan2: string,
    readonly internet: string,
    private readonly dir: string,
    private readonly miniupnpd: ChildProcess,
  ) {}

  get router(): string {
    return this.lab.namespace;
  }

  static async create(): Promise<MiniupnpdLab> {
    const lab = await NetnsLab.create('pm');
    const dir = await mkdtemp(join(tmpdir(), `${lab.namespace}-upnp-`));
    try {
      const lan = await lab.addNamespace('lan');
      const lan2 = await lab.addNamespace('lan2');
      const internet = await lab.addNamespace('inet');
      const router = lab.namespace;
      await veth(
        { ns: router, name: 'wan0', cidr: `${WAN_IP}/24` },
        { ns: internet, name: 'inet0', cidr: `${INTERNET_IP}/24` },
      );
      await veth(
        { ns: router, name: 'lan0', cidr: `${ROUTER_LAN_IP}/24` },
        { ns: lan, name: 'eth0', cidr: `${LAN_IP}/24` },
      );
      await veth(
        { ns: router, name: 'lan1', cidr: `${ROUTER_LAN2_IP}/24` },
        { ns: lan2, name: 'eth0', cidr: `${LAN2_IP}/24` },
      );
      await run('ip', ['-n', lan, 'route', 'add', 'default', 'via', ROUTER_LAN_IP]);
      await run('ip', ['-n', lan2, 'route', 'add', 'default', 'via', ROUTER_LAN2_IP]);
      await run('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await writeFile(join(dir, 'ruleset.nft'), RULESET);
      await run('ip', ['netns', 'exec', router, 'nft', '-f', join(dir, 'ruleset.nft')]);
      await writeFile(join(dir, 'miniupnpd.conf'), config(dir));
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          router,
          'miniupnpd',
          '-f',
          join(dir, 'miniupnpd.conf'),
          '-d',
          '-P',
          join(dir, 'pid'),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const result = new MiniupnpdLab(lab, lan, lan2, internet, dir, child);
      child.stderr!.on('data', (chunk: Buffer) => {
        result.log += chunk.toString();
      });
      await waitFor(`miniupnpd to listen (log: ${result.log.slice(-1500)})`, () =>
        /Listening for NAT-PMP\/PCP traffic/.test(result.log) && /HTTP listening/.test(result.log)
          ? true
          : undefined,
      );
      return result;
    } catch (error) {
      await lab.destroy();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** miniupnpd's debug output so far, for failure messages. */
  logTail(chars = 3000): string {
    return this.log.slice(-chars);
  }

  /** UDP packets from the WAN that ended in the router's own input (i.e. were not forwarded). */
  async droppedAtRouter(): Promise<number> {
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      this.router,
      'nft',
      'list',
      'counter',
      'inet',
      'filter',
      'wan_udp_in',
    ]);
    const m = /packets (\d+)/.exec(stdout);
    if (!m) throw new Error(`cannot read counter: ${stdout}`);
    return Number(m[1]);
  }

  /** miniupnpd's DNAT rules as nft prints them. */
  async redirects(): Promise<string> {
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      this.router,
      'nft',
      'list',
      'chain',
      'inet',
      'filter',
      'prerouting_miniupnpd',
    ]);
    return stdout;
  }

  async destroy(): Promise<void> {
    if (this.miniupnpd.exitCode === null && this.miniupnpd.signalCode === null) {
      const exited = new Promise((r) => this.miniupnpd.once('exit', r));
      this.miniupnpd.kill('SIGTERM');
      await exited;
    }
    await this.lab.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A veth pair created directly with each end inside its namespace, addressed and up. */
async function veth(
  a: { ns: string; name: string; cidr: string },
  b: { ns: string; name: string; cidr: string },
) {
  await run('ip', [
    'link',
    'add',
    'name',
    a.name,
    'netns',
    a.ns,
    'type',
    'veth',
    'peer',
    'name',
    b.name,
    'netns',
    b.ns,
  ]);
  for (const end of [a, b]) {
    await run('ip', ['-n', end.ns, 'addr', 'add', end.cidr, 'dev', end.name]);
    await run('ip', ['-n', end.ns, 'link', 'set', end.name, 'up']);
  }
}
