import { isIPv4 } from 'node:net';
import type { TokenBucketRate } from '@trellis/reflector';
import { type CommandRunner, runCommand } from './command-runner';
import type { KernelBudgets, KernelCounters, KernelPair, KernelPath, UdpSide } from './kernel-path';
import { ipRouteLookup, type Route, type RouteLookup } from './route-lookup';

const TABLE = 'netdev trellis_relay';

interface Installed {
  port: number;
  keys: string[];
  accountId: string;
  /** The account's named limit. */
  limit: string;
}

/**
 * The kernel path on Linux: stateless rewriting in the nftables netdev ingress hook (needs only
 * CAP_NET_ADMIN; no ip_forward, no conntrack). A packet from a bound source to its allocation's
 * port is looked up in one map (source ip . source port . relay port → that side's chain), which
 * rewrites it to come from the relay address and port it was sent to and go to the other side, and
 * hands it straight to the outgoing device's neighbour: no routing, no connection tracking, no
 * socket. Rewriting keeps no state, so a rebind takes effect with the next packet. Each chain first
 * applies the allocation's and the account's packet budgets (named limits shared by both
 * directions), and counts into the allocation's named counters (kept across rebinds).
 */
export class NetdevPath implements KernelPath {
  private readonly installed = new Map<string, Installed>();
  /** Ingress chains by device (one per device the sides are reached through). */
  private readonly devices = new Set<string>();
  /** Account id → [limit object name, allocations using it]. */
  private readonly accounts = new Map<string, { name: string; users: number }>();
  private nextAccount = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly budgets: KernelBudgets,
    private readonly run: CommandRunner = runCommand,
    private readonly route: RouteLookup = ipRouteLookup(run),
  ) {}

  /** Installs an empty table (replacing one a killed relay left); fails without CAP_NET_ADMIN. */
  async start(): Promise<void> {
    await this.nft(`add table ${TABLE}
delete table ${TABLE}
table ${TABLE} {
  map sides { type ipv4_addr . inet_service . inet_service : verdict; }
}
`).catch((err: Error) => {
      throw new Error(`kernel forwarding needs nft (Debian: nftables) and CAP_NET_ADMIN: ${err.message}`);
    });
  }

  forward(pair: KernelPair): Promise<void> {
    return this.serial(async () => {
      const { a, b, port } = pair;
      if (!isIPv4(a.address) || !isIPv4(b.address)) return this.remove(pair.allocationId);
      let routes: [Route | null, Route | null];
      try {
        routes = await Promise.all([this.route(a.address), this.route(b.address)]);
      } catch (err) {
        await this.remove(pair.allocationId);
        throw err;
      }
      if (!routes[0] || !routes[1]) return this.remove(pair.allocationId);
      const old = this.installed.get(pair.allocationId);
      const limit = old?.limit ?? this.holdAccount(pair.accountId);
      const keys = [key(a, port), key(b, port)];
      const script = [
        ...[...new Set([routes[0].device, routes[1].device])].flatMap((d) => this.ingressLines(d)),
        `add counter ${TABLE} fwd_${port}`,
        `add counter ${TABLE} drop_${port}`,
        `add limit ${TABLE} lim_${port} ${limitSpec(this.budgets.allocation)}`,
        `add limit ${TABLE} ${limit} ${limitSpec(this.budgets.account)}`,
        ...(old ? [`delete element ${TABLE} sides { ${old.keys.join(', ')} }`] : []),
        ...this.sideLines(port, 0, limit, b, routes[1]),
        ...this.sideLines(port, 1, limit, a, routes[0]),
        `add element ${TABLE} sides { ${keys[0]} : jump p${port}_0, ${keys[1]} : jump p${port}_1 }`,
      ];
      try {
        await this.nft(`${script.join('\n')}\n`);
      } catch (err) {
        if (!old) this.releaseAccount(pair.accountId); // nothing was installed for it
        throw err;
      }
      for (const r of [routes[0], routes[1]]) this.devices.add(r.device);
      this.installed.set(pair.allocationId, { port, keys, accountId: pair.accountId, limit });
    });
  }

  stop(allocationId: string): Promise<void> {
    return this.serial(() => this.remove(allocationId));
  }

  async counters(): Promise<Map<string, KernelCounters>> {
    const out = new Map<string, KernelCounters>();
    if (this.installed.size === 0) return out;
    const listing = JSON.parse(
      await this.run('nft', ['-j', 'list', 'counters', 'table', ...TABLE.split(' ')]),
    );
    const byName = new Map<string, { packets: number; bytes: number }>();
    for (const item of (listing as { nftables?: Array<Record<string, unknown>> }).nftables ?? []) {
      const c = item.counter as { name?: string; packets?: number; bytes?: number } | undefined;
      if (c?.name) byName.set(c.name, { packets: c.packets ?? 0, bytes: c.bytes ?? 0 });
    }
    for (const [id, { port }] of this.installed) {
      const fwd = byName.get(`fwd_${port}`);
      if (!fwd) continue;
      out.set(id, { ...fwd, rateLimited: byName.get(`drop_${port}`)?.packets ?? 0 });
    }
    return out;
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.installed.clear();
      this.devices.clear();
      this.accounts.clear();
      await this.nft(`add table ${TABLE}\ndelete table ${TABLE}\n`).catch(() => undefined);
    });
  }

  /** The base chain on a device the first time a side is reached through it. */
  private ingressLines(device: string): string[] {
    if (this.devices.has(device)) return [];
    const chain = `in_${device.replace(/\W/g, '_')}`;
    return [
      `add chain ${TABLE} ${chain} { type filter hook ingress device "${device}" priority -500; policy accept; }`,
      `flush chain ${TABLE} ${chain}`,
      // Fragments carry no UDP header past the first: they go to the process, whole.
      `add rule ${TABLE} ${chain} ip protocol udp ip frag-off & 0x3fff == 0 ip saddr . udp sport . udp dport vmap @sides`,
    ];
  }

  /** The chain for packets from side `from`, towards `to` (reached by `route`). */
  private sideLines(port: number, from: 0 | 1, accountLimit: string, to: UdpSide, route: Route): string[] {
    const chain = `p${port}_${from}`;
    return [
      `add chain ${TABLE} ${chain}`,
      `flush chain ${TABLE} ${chain}`,
      `add rule ${TABLE} ${chain} limit name "lim_${port}" counter name "drop_${port}" drop`,
      `add rule ${TABLE} ${chain} limit name "${accountLimit}" counter name "drop_${port}" drop`,
      // Source = the relay address and port the packet was sent to, as the other side expects.
      `add rule ${TABLE} ${chain} counter name "fwd_${port}" ip saddr set ip daddr ip daddr set ${to.address} ` +
        `udp sport set udp dport udp dport set ${to.port} fwd ip to ${route.nextHop} device "${route.device}"`,
    ];
  }

  private async remove(allocationId: string): Promise<void> {
    const old = this.installed.get(allocationId);
    if (!old) return;
    this.installed.delete(allocationId);
    const { port } = old;
    const lines = [
      `delete element ${TABLE} sides { ${old.keys.join(', ')} }`,
      `delete chain ${TABLE} p${port}_0`,
      `delete chain ${TABLE} p${port}_1`,
      `delete counter ${TABLE} fwd_${port}`,
      `delete counter ${TABLE} drop_${port}`,
      `delete limit ${TABLE} lim_${port}`,
    ];
    if (this.releaseAccount(old.accountId)) lines.push(`delete limit ${TABLE} ${old.limit}`);
    await this.nft(`${lines.join('\n')}\n`);
  }

  private holdAccount(accountId: string): string {
    let entry = this.accounts.get(accountId);
    if (!entry) {
      entry = { name: `acct_${this.nextAccount++}`, users: 0 };
      this.accounts.set(accountId, entry);
    }
    entry.users++;
    return entry.name;
  }

  /** True when no allocation uses the account's limit any more. */
  private releaseAccount(accountId: string): boolean {
    const entry = this.accounts.get(accountId);
    if (!entry || --entry.users > 0) return false;
    this.accounts.delete(accountId);
    return true;
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

function key(side: UdpSide, port: number): string {
  return `${side.address} . ${side.port} . ${port}`;
}

/** A named limit that matches (and so drops) what is over the token bucket. */
function limitSpec(rate: TokenBucketRate): string {
  const perSecond = Math.max(1, Math.round(rate.refillPerSecond));
  const burst = Math.max(1, Math.round(rate.capacity));
  return `{ rate over ${perSecond}/second burst ${burst} packets; }`;
}
