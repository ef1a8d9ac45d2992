/**
 * Part 3: the agent's nftables backend with 1,000 peers, in a fresh network namespace (root, `ip`,
 * `nft`): a dummy interface (one end of a veth pair where the kernel lacks the dummy module) stands
 * for the WireGuard one. Measured twice: from a process started inside the namespace with
 * `ip netns exec` (as an agent runs there: nft and conntrack started directly), and from this
 * process with every command prefixed by `ip netns exec` (which adds its own start-up to each).
 * One peer's tcp ports change back and forth:
 * - incremental: the same NftablesBackend applies each change (set elements only);
 * - full `nft -f`: the whole ruleset of the same policy loaded in one `nft -f -` transaction, as a
 *   full apply does (the baseline);
 * - full apply by a fresh backend (an agent restart with another policy): reads the kernel's table,
 *   then loads it whole.
 * Time inside nft and conntrack is summed separately. The namespace is removed at the end.
 */
import { execFileSync } from 'node:child_process';
import {
  type CommandRunner,
  type InboundPolicy,
  NftablesBackend,
  nftFullScript,
  nftState,
  nftStateHash,
  normalizeInbound,
  prefixedRunner,
  runChecked,
  runCommand,
} from '@trellis/firewall';
import type { AccessRules } from '@trellis/proto';
import { rng } from './generate';

const IFACE = 'wg-bench0';
const SELF = '100.64.0.1';

export interface FirewallResult {
  /** How commands reach the namespace. */
  how: 'process in the namespace' | 'ip netns exec per command';
  /** The interface standing for WireGuard's: `dummy`, or `veth` where the kernel has no dummy module. */
  link: string;
  peers: number;
  elements: number;
  reps: number;
  /** Starting a no-op command (`true`) the same way. */
  spawn: number[];
  incremental: number[];
  incrementalNft: number[];
  incrementalConntrack: number[];
  /** Per incremental change: whether it took the port away (a narrowing: the peer's flows are audited). */
  incrementalNarrowing: boolean[];
  fullNft: number[];
  freshFull: number[];
  freshFullNft: number[];
  /** Applies that did not take the expected path (mode), with what they took. */
  anomalies: string[];
}

/** Why part 3 cannot run here, or undefined when it can. */
export function firewallBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  for (const [tool, flag] of [
    ['ip', '-V'],
    ['nft', '--version'],
  ] as const) {
    try {
      execFileSync(tool, [flag], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing`;
    }
  }
  return undefined;
}

const TCP = [
  [22],
  [80],
  [443],
  [3306],
  [5432],
  [6379],
  [8080],
  [9100],
  [8000, 8100],
  [30000, 32767],
  [2379, 2380],
];
const UDP = [[53], [123], [51820], [5000, 5100]];

/**
 * `count` peers as a netmap's `in` access makes them: a tenth may open everything, the others a
 * few tcp ports or ranges, some udp, half icmp. `variant` adds tcp 4242 to peer `changed`.
 */
function inboundPolicy(count: number, variant: boolean, changed: number): InboundPolicy {
  const r = rng(4242);
  const peers = Array.from({ length: count }, (_, i) => {
    const address = `100.64.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    if (r() < 0.1) return { address, allow: [{}] as AccessRules };
    const tcp = new Set<number[]>();
    const spans = 1 + Math.floor(r() * 4);
    while (tcp.size < spans) tcp.add(TCP[Math.floor(r() * TCP.length)]!);
    const ports = [...tcp].map((s) => [s[0]!, s[1] ?? s[0]!] as [number, number]);
    if (variant && i === changed) ports.push([4242, 4242]);
    const allow: AccessRules = [{ proto: 'tcp', ports }];
    if (r() < 0.4) {
      const u = UDP[Math.floor(r() * UDP.length)]!;
      allow.push({ proto: 'udp', ports: [[u[0]!, u[1] ?? u[0]!]] });
    }
    if (r() < 0.5) allow.push({ proto: 'icmp' });
    return { address, allow };
  });
  return { interfaceName: IFACE, selfAddress: SELF, peers };
}

/** A fresh namespace with the stand-in interface; removed after `fn`, whatever happened. */
export async function withNamespace<T>(fn: (ns: string, link: string) => Promise<T>): Promise<T> {
  const ns = `trellis-bench-${process.pid}`;
  await runChecked(runCommand, 'ip', ['netns', 'add', ns]);
  const inNs = prefixedRunner(['ip', 'netns', 'exec', ns]);
  try {
    await runChecked(inNs, 'ip', ['link', 'set', 'lo', 'up']);
    // A dummy interface; kernels built without the dummy module get one end of a veth pair.
    let link = 'dummy';
    if ((await inNs('ip', ['link', 'add', IFACE, 'type', 'dummy'])).code !== 0) {
      link = 'veth';
      await runChecked(inNs, 'ip', ['link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`]);
    }
    await runChecked(inNs, 'ip', ['addr', 'add', `${SELF}/10`, 'dev', IFACE]);
    await runChecked(inNs, 'ip', ['link', 'set', IFACE, 'up']);
    return await fn(ns, link);
  } finally {
    await runCommand('ip', ['netns', 'del', ns]);
  }
}

/**
 * The measurements, with `base` running every command inside the namespace: either this process
 * is in it already (started by `ip netns exec`, as an agent would run there) and commands run
 * directly, or each command goes through `ip netns exec`.
 */
export async function measureFirewall(
  how: FirewallResult['how'],
  link: string,
  base: CommandRunner,
  peers: number,
  reps: number,
): Promise<FirewallResult> {
  const spent = { nft: 0, conntrack: 0 };
  const run: CommandRunner = async (cmd, args, stdin) => {
    const t = performance.now();
    const r = await base(cmd, args, stdin);
    if (cmd === 'nft' || cmd === 'conntrack') spent[cmd] += performance.now() - t;
    return r;
  };
  const changed = Math.floor(peers / 3);
  const policies = [inboundPolicy(peers, false, changed), inboundPolicy(peers, true, changed)];
  const state = nftState(normalizeInbound(policies[0]!));
  const elements = state.allowAll.length + state.allowIcmp.length + state.allowPorts.length;
  const anomalies: string[] = [];
  const result: FirewallResult = {
    how,
    link,
    peers,
    elements,
    reps,
    spawn: [],
    incremental: [],
    incrementalNft: [],
    incrementalConntrack: [],
    incrementalNarrowing: [],
    fullNft: [],
    freshFull: [],
    freshFullNft: [],
    anomalies,
  };

  const backend = new NftablesBackend({ run });
  const first = await backend.apply(policies[0]!);
  if (first.mode !== 'full') anomalies.push(`first apply: ${first.mode}`);
  // Warm-up: one change each way, not counted.
  await backend.apply(policies[1]!);
  await backend.apply(policies[0]!);

  // Incremental changes (the port added, then taken away: a narrowing, so the peer's flows are
  // audited with conntrack), each followed by a full reload of the very ruleset it left in the kernel.
  for (let i = 0; i < reps; i++) {
    const policy = policies[(i + 1) % 2]!;
    spent.nft = 0;
    spent.conntrack = 0;
    let t = performance.now();
    const res = await backend.apply(policy);
    result.incremental.push(performance.now() - t);
    result.incrementalNft.push(spent.nft);
    result.incrementalConntrack.push(spent.conntrack);
    result.incrementalNarrowing.push(policy === policies[0]);
    if (res.mode !== 'incremental') anomalies.push(`incremental ${i}: ${res.mode}`);
    const s = nftState(normalizeInbound(policy));
    const script = nftFullScript(s, nftStateHash(s));
    t = performance.now();
    await runChecked(run, 'nft', ['-f', '-'], script);
    result.fullNft.push(performance.now() - t);
    // What starting any command costs here: the floor under every nft and conntrack run.
    t = performance.now();
    await runChecked(run, 'true', []);
    result.spawn.push(performance.now() - t);
  }

  // A fresh backend (restarted agent) finding the other policy in the kernel: read, then load whole.
  let held = reps % 2; // the kernel holds policies[held] after the loop above
  for (let i = 0; i < reps; i++) {
    held = 1 - held;
    const policy = policies[held]!;
    spent.nft = 0;
    const t = performance.now();
    const res = await new NftablesBackend({ run }).apply(policy);
    result.freshFull.push(performance.now() - t);
    result.freshFullNft.push(spent.nft);
    if (res.mode !== 'full') anomalies.push(`fresh backend ${i}: ${res.mode}`);
  }
  await new NftablesBackend({ run }).remove();
  return result;
}

/** Both ways in one namespace: this process's commands through `ip netns exec`, and `inside()`. */
export async function runFirewall(
  peers: number,
  reps: number,
  inside: (ns: string, link: string) => FirewallResult,
): Promise<FirewallResult[]> {
  return withNamespace(async (ns, link) => {
    const agentLike = inside(ns, link);
    const perCommand = await measureFirewall(
      'ip netns exec per command',
      link,
      prefixedRunner(['ip', 'netns', 'exec', ns]),
      peers,
      reps,
    );
    return [agentLike, perCommand];
  });
}
