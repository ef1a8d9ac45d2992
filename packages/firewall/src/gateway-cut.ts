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

/** Whether the gateway policy lets this forwarded flow (original direction: peer → destination) through. */
export function gatewayAllows(g: NormalizedGateway, f: ConntrackFlow): boolean {
  const port = f.proto === 'tcp' || f.proto === 'udp' ? f.dport : undefined;
  const vd = g.virtualDevices.find((d) => d.meshAddress === f.dst);
  const mine = g.access.filter((a) => a.peer === f.src);
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

/** A forwarded flow from a peer: from another mesh address, to neither this device nor the mesh (a virtual device aside). */
function forwardedFromPeer(g: NormalizedGateway, f: ConntrackFlow): boolean {
  if (f.src === g.selfAddress || !ipv4InCidr(f.src, OVERLAY_PREFIX)) return false;
  if (g.virtualDevices.some((d) => d.meshAddress === f.dst)) return true;
  return f.dst !== g.selfAddress && !ipv4InCidr(f.dst, OVERLAY_PREFIX);
}

/**
 * Lists the connection tracking table and deletes each forwarded flow `after` forbids, one by one
 * (by its full tuple). Never throws: a missing tool or a failure ends up in `error`.
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
    for (const f of parseConntrackList(listed.stdout)) {
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
