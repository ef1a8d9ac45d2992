import { ipv4InCidr, OVERLAY_PREFIX } from '@trellis/proto';
import { type ConntrackFlow, type CutOutcome, deletedCount, parseConntrackList } from './conntrack';
import type { ForwardAllowance, NormalizedGateway } from './gateway';
import { allows, type PeerAllowance } from './policy';
import type { CommandRunner } from './runner';

// Cutting forwarded flows a narrower gateway policy no longer allows, on Linux. The forward chain
// lets established flows through, so without this a peer whose access to a LAN host was taken away
// would keep its open connections. Unlike inbound flows (conntrack.ts), a forwarded UDP flow may be
// deleted too: no local socket sits at either end to re-create it in the other direction, and the
// LAN host's next datagram to the masqueraded address finds no mapping to come back through.
// A flow that is still allowed is never deleted.

/** Whether `after` may forbid a flow that `before` let through (undefined before: unknown, e.g. a restart). */
export function gatewayNarrowed(before: NormalizedGateway | undefined, after: NormalizedGateway): boolean {
  if (!before) return true;
  const now = new Set(after.access.map((a) => JSON.stringify(a)));
  if (before.access.some((a) => !now.has(JSON.stringify(a)))) return true;
  const vds = new Set(after.virtualDevices.map((d) => `${d.meshAddress} ${d.lanAddress}`));
  if (before.virtualDevices.some((d) => !vds.has(`${d.meshAddress} ${d.lanAddress}`))) return true;
  const routes = new Set(after.lan?.routes ?? []);
  if ((before.lan?.routes ?? []).some((r) => !routes.has(r))) return true;
  const exitPeers = new Set(after.exitNode?.peers ?? []);
  return (before.exitNode?.peers ?? []).some((p) => !exitPeers.has(p));
}

const asPeerAllowance = (a: ForwardAllowance): PeerAllowance => ({ ...a, address: a.peer });

/** A forwarded flow as `conntrack -L` lists it. */
export interface GatewayFlow extends ConntrackFlow {
  /** The reply tuple's source; unlike `dst`, the LAN host a DNATed flow (to a virtual device) went to. */
  replySrc?: string;
}

/** Each row's original tuple and its reply source (the second `src=` of the row). */
export function parseGatewayFlows(stdout: string): GatewayFlow[] {
  const flows: GatewayFlow[] = [];
  for (const line of stdout.split('\n')) {
    const f = parseConntrackList(line)[0];
    if (!f) continue;
    const replySrc = [...line.matchAll(/\bsrc=(\S+)/g)][1]?.[1];
    flows.push({ ...f, ...(replySrc !== undefined ? { replySrc } : {}) });
  }
  return flows;
}

/** A flow from a peer to a mesh address (not this device) that was DNATed: to a virtual device, now or once. */
const toVirtual = (g: NormalizedGateway, f: GatewayFlow) =>
  f.dst !== g.selfAddress &&
  ipv4InCidr(f.dst, OVERLAY_PREFIX) &&
  f.replySrc !== undefined &&
  f.replySrc !== f.dst;

/** Whether the gateway policy lets this forwarded flow (original direction: peer → destination) through. */
export function gatewayAllows(g: NormalizedGateway, f: GatewayFlow): boolean {
  const port = f.proto === 'tcp' || f.proto === 'udp' ? f.dport : undefined;
  const vd = g.virtualDevices.find((d) => d.meshAddress === f.dst);
  const mine = g.access.filter((a) => a.peer === f.src);
  // A virtual device removed, or moved to another LAN host: its NAT entry still leads to the old host.
  if (toVirtual(g, f) && vd?.lanAddress !== f.replySrc) return false;
  if (vd)
    return mine.some(
      (a) => a.destination === `${vd.meshAddress}/32` && allows(asPeerAllowance(a), f.proto, port),
    );
  if (g.lan?.routes.some((r) => ipv4InCidr(f.dst, r))) {
    return mine.some(
      (a) =>
        !g.virtualDevices.some((d) => `${d.meshAddress}/32` === a.destination) &&
        ipv4InCidr(f.dst, a.destination) &&
        allows(asPeerAllowance(a), f.proto, port),
    );
  }
  return g.exitNode?.peers.includes(f.src) ?? false;
}

/**
 * A forwarded flow from a peer: from another mesh address, to neither this device nor the mesh, a
 * virtual device aside (a current one, or one the DNAT of the row shows it was: removed since).
 */
function forwardedFromPeer(g: NormalizedGateway, f: GatewayFlow): boolean {
  if (f.src === g.selfAddress || !ipv4InCidr(f.src, OVERLAY_PREFIX)) return false;
  if (g.virtualDevices.some((d) => d.meshAddress === f.dst) || toVirtual(g, f)) return true;
  return f.dst !== g.selfAddress && !ipv4InCidr(f.dst, OVERLAY_PREFIX);
}

/**
 * Lists the connection tracking table and deletes each forwarded flow `after` forbids, one by one
 * (by its full tuple); flows to a virtual device `after` removed or maps to another LAN host are
 * among them (the reply tuple shows where each went, so this holds after a restart too). Never
 * throws: a missing tool or a failure ends up in `error`.
 */
export async function cutGatewayFlows(
  run: CommandRunner,
  bin: string,
  after: NormalizedGateway,
): Promise<CutOutcome> {
  let cut = 0;
  try {
    const listed = await run(bin, ['-L']);
    if (listed.code !== 0)
      throw new Error(`conntrack -L failed (exit ${listed.code}): ${listed.stderr.trim()}`);
    for (const f of parseGatewayFlows(listed.stdout)) {
      if (!forwardedFromPeer(after, f) || gatewayAllows(after, f)) continue;
      const args = ['-D', '-s', f.src, '-d', f.dst, '-p', f.proto];
      if ((f.proto === 'tcp' || f.proto === 'udp') && f.sport !== undefined && f.dport !== undefined) {
        args.push('--sport', `${f.sport}`, '--dport', `${f.dport}`);
      }
      const r = await run(bin, args);
      // Exit 1 with nothing deleted: the flow ended meanwhile.
      if (r.code !== 0 && deletedCount(r.stderr) === 0 && !/0 flow entries/.test(r.stderr)) {
        throw new Error(`conntrack ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
      }
      cut += deletedCount(r.stderr);
    }
    return { cut };
  } catch (err) {
    return { cut, error: err instanceof Error ? err.message : String(err) };
  }
}
