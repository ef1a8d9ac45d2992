import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { PortRange } from '@trellis/proto';
import type { KernelPath, UdpSide } from './kernel-path';

/** Runs a command, optionally with stdin; resolves stdout, rejects with stderr in the message. */
export type CommandRunner = (file: string, args: string[], input?: string) => Promise<string>;

export const runCommand: CommandRunner = (file, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });

const TABLE = 'trellis_relay';

/**
 * The kernel path on Linux with nftables and conntrack (needs CAP_NET_ADMIN and
 * net.ipv4.ip_forward=1). One table: a map (source ip . source port . relay port) → other side,
 * used by a DNAT rule, and a map relay port → (relay address . relay port) for the SNAT, so the
 * other side sees the packet from the relay port it talks to. Conntrack then carries both
 * directions; the port's conntrack entries are deleted on every change, or old flows (delivered to
 * the process, or NATed to a previous address) would keep their path.
 */
export class NftablesPath implements KernelPath {
  private readonly installed = new Map<string, { port: number; keys: string[] }>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    /** The relay's own IPv4 address the sides send to (the SNAT source). */
    private readonly localAddress: string,
    private readonly ports: PortRange,
    private readonly run: CommandRunner = runCommand,
  ) {
    if (!isIPv4(localAddress))
      throw new Error(`kernel forwarding needs an IPv4 relay address, not ${localAddress}`);
  }

  /** Checks the prerequisites and installs an empty table (replacing one a killed relay left). */
  async start(): Promise<void> {
    const forwarding = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0')).trim();
    if (forwarding !== '1') throw new Error('kernel forwarding needs net.ipv4.ip_forward=1');
    await this.run('conntrack', ['--version']).catch((err: Error) => {
      throw new Error(`kernel forwarding needs the conntrack tool (Debian: conntrack): ${err.message}`);
    });
    const { first, last } = this.ports;
    await this.nft(`add table ip ${TABLE}
delete table ip ${TABLE}
table ip ${TABLE} {
  map pairs { type ipv4_addr . inet_service . inet_service : ipv4_addr . inet_service; }
  map back { type inet_service : ipv4_addr . inet_service; }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    udp dport ${first}-${last} dnat ip to ip saddr . udp sport . udp dport map @pairs
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    meta l4proto udp ct status dnat snat ip to ct original proto-dst map @back
  }
}
`);
  }

  forward(allocationId: string, port: number, a: UdpSide, b: UdpSide): Promise<void> {
    return this.serial(async () => {
      if (!isIPv4(a.address) || !isIPv4(b.address)) return this.remove(allocationId);
      const keys = [`${a.address} . ${a.port} . ${port}`, `${b.address} . ${b.port} . ${port}`];
      const old = this.installed.get(allocationId);
      const script = [
        ...(old ? this.deleteLines(old) : []),
        `add element ip ${TABLE} pairs { ${keys[0]} : ${b.address} . ${b.port}, ${keys[1]} : ${a.address} . ${a.port} }`,
        `add element ip ${TABLE} back { ${port} : ${this.localAddress} . ${port} }`,
      ];
      await this.nft(`${script.join('\n')}\n`);
      this.installed.set(allocationId, { port, keys });
      await this.flushPort(port);
    });
  }

  stop(allocationId: string): Promise<void> {
    return this.serial(() => this.remove(allocationId));
  }

  async activePorts(): Promise<Set<number>> {
    const out = await this.run('conntrack', ['-L', '-p', 'udp']).catch(() => '');
    const active = new Set<number>();
    const ours = new Set([...this.installed.values()].map((i) => i.port));
    for (const line of out.split('\n')) {
      // Original tuple first: "... dport=P src=B ..." where the reply comes from elsewhere: NATed.
      const m = /dst=(\S+) sport=\d+ dport=(\d+) .*?src=(\S+) /.exec(line);
      if (!m) continue;
      const port = Number(m[2]);
      if (ours.has(port) && m[3] !== m[1]) active.add(port);
    }
    return active;
  }

  close(): Promise<void> {
    return this.serial(async () => {
      const ports = [...this.installed.values()].map((i) => i.port);
      this.installed.clear();
      await this.nft(`add table ip ${TABLE}\ndelete table ip ${TABLE}\n`).catch(() => undefined);
      for (const port of ports) await this.flushPort(port);
    });
  }

  private async remove(allocationId: string): Promise<void> {
    const old = this.installed.get(allocationId);
    if (!old) return;
    this.installed.delete(allocationId);
    await this.nft(`${this.deleteLines(old).join('\n')}\n`);
    await this.flushPort(old.port);
  }

  private deleteLines(old: { port: number; keys: string[] }): string[] {
    return [
      `delete element ip ${TABLE} pairs { ${old.keys.join(', ')} }`,
      `delete element ip ${TABLE} back { ${old.port} }`,
    ];
  }

  /** conntrack exits 1 when nothing matched: that is not an error here. */
  private async flushPort(port: number): Promise<void> {
    for (const dir of ['--orig-port-dst', '--orig-port-src'])
      await this.run('conntrack', ['-D', '-p', 'udp', dir, String(port)]).catch(() => undefined);
  }

  private nft(script: string): Promise<string> {
    return this.run('nft', ['-f', '-'], script);
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const next = this.queue.then(job);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
