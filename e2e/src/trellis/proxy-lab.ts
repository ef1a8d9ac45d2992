import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import { replyTimes } from '../ping-output';
import {
  FullConeNat,
  PortRestrictedNat,
  type RouterKind,
  SymmetricNat,
  UdpBlockedNat,
} from '../router-kinds';
import { waitFor } from '../wait';
import { AgentRunner } from './agent';
import type { BrokerRunner } from './broker';
import type { LabDatabase } from './lab-database';
import type { TrellisBuild } from './paths';

/**
 * Shared by the tests of broker instances behind one HAProxy (proxy-topology, rolling-upgrade):
 * agents at NAT sites of several kinds, which pairs the NATs let go direct, and what the instances'
 * logs say about who holds which device.
 */
export type NatKindName = 'fc' | 'pr' | 'sym' | 'ub';

const MAKE: Record<NatKindName, () => RouterKind> = {
  fc: () => new FullConeNat(),
  pr: () => new PortRestrictedNat(),
  sym: () => new SymmetricNat(),
  ub: () => new UdpBlockedNat(),
};

/** The pairs the NATs let go direct (the NAT matrix's rule for these kinds). */
export function expectDirect(a: NatKindName, b: NatKindName): boolean {
  if (a === 'ub' || b === 'ub') return false;
  if (a === 'sym' && b === 'sym') return false;
  if ((a === 'sym' && b === 'pr') || (a === 'pr' && b === 'sym')) return false;
  return true;
}

/** One agent at a site of its own. `id`/`address` are filled in once it has enrolled. */
export interface LabMember {
  kind: NatKindName;
  agent: AgentRunner;
  id: string;
  address: string;
}

/** Sites (one device `d` each) of these kinds, named e.g. `fc1`, with an agent of `build` on each. */
export async function addMembers(
  lab: Lab,
  sites: ReadonlyArray<{ site: string; kind: NatKindName; build: TrellisBuild }>,
): Promise<LabMember[]> {
  const made = await Promise.all(sites.map((s) => lab.addSite(s.site, MAKE[s.kind](), ['d'])));
  return made.map((site, i) => ({
    kind: sites[i]!.kind,
    agent: new AgentRunner(lab, site.device('d'), 51820, sites[i]!.build),
    id: '',
    address: '',
  }));
}

export const siteName = (m: LabMember): string => m.agent.device.site.name;

/** Waits for each member to be connected with its netmap; fills in its id and mesh address. */
export async function enrolled(members: readonly LabMember[]): Promise<void> {
  for (const m of members) {
    const st = await m.agent.waitConnected();
    m.id = st.self.id;
    m.address = st.self.address;
  }
}

/**
 * Sends traffic over every pair, then waits until each pair has been seen direct or relayed as the
 * NATs say (both sides at once; a pair seen so stays counted: a side between two attempts shows no
 * path for a moment); returns the pairs never seen so (empty: all were).
 */
export async function settlePairs(members: readonly LabMember[], timeoutMs = 45_000): Promise<string[]> {
  const traffic = members.flatMap((m) =>
    members.filter((o) => o !== m).map((o) => m.agent.device.ns.ping(o.address, { waitS: 1 })),
  );
  let pending = members.flatMap((a, i) =>
    members.slice(i + 1).map((b) => ({ a, b, direct: expectDirect(a.kind, b.kind), last: '' })),
  );
  await waitFor(
    async () => {
      // One status per member a round, all at once (each is a CLI process: slow on a busy machine).
      const statuses = new Map(
        await Promise.all(members.map(async (m) => [m, await m.agent.status()] as const)),
      );
      const pathOf = (m: LabMember, peer: LabMember) =>
        statuses.get(m)!.peers.find((p) => p.id === peer.id)?.path ?? 'none';
      for (const p of pending) {
        const [x, y] = [pathOf(p.a, p.b), pathOf(p.b, p.a)];
        const ok = p.direct
          ? x.startsWith('direct') && y.startsWith('direct')
          : x === 'relay' && y === 'relay';
        p.last = ok ? '' : `want ${p.direct ? 'direct' : 'relay'}: ${x} / ${y}`;
      }
      pending = pending.filter((p) => p.last !== '');
      return pending.length === 0;
    },
    { timeoutMs, intervalMs: 500, what: 'every pair direct or relayed' },
  ).catch(() => undefined);
  await Promise.all(traffic);
  return pending.map((p) => `${siteName(p.a)} ↔ ${siteName(p.b)} (${p.last})`);
}

/** Pings `b` from `a` ten times a second (for lostReplies/replyTimes); the caller stops it. */
export function startPing(a: LabMember, b: LabMember, what: string): LabProcess {
  return a.agent.device.ns.spawn('ping', ['-n', '-D', '-i', '0.1', '-W', '1', b.address], { logName: what });
}

/**
 * The broker's relay adoption grace (RelayAdoptions' adoptGraceMs default): a relay that moved to
 * another instance has its reported allocations released there unless a pair claims them within
 * this. Pings after a relay moved run past it, so a pair whose allocation was released shows.
 */
export const RELAY_ADOPT_GRACE_MS = 60_000;

/** A `device connected` line of an instance's log (pino JSON). */
export interface DeviceConnected {
  instance: number;
  deviceId: string;
  time: number;
  /** The control connection's source, `ip:port`, as the instance sees it. */
  remote: string;
  capabilityVersion: number | undefined;
}

/** The JSON lines with this `msg` that the instances' current processes logged, oldest first. */
function logEvents(brokers: readonly BrokerRunner[], msg: string) {
  const out: Array<{ instance: number; o: Record<string, unknown> }> = [];
  for (const [instance, b] of brokers.entries())
    for (const line of b.logLines()) {
      if (!line.startsWith('{') || !line.includes(`"${msg}"`)) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push({ instance, o });
    }
  return out.sort((x, y) => Number(x.o.time) - Number(y.o.time));
}

/** Every `device connected` line the instances' current processes logged, oldest first. */
export function deviceConnections(brokers: readonly BrokerRunner[]): DeviceConnected[] {
  return logEvents(brokers, 'device connected').map(({ instance, o }) => ({
    instance,
    deviceId: String(o.deviceId),
    time: Number(o.time),
    remote: String(o.remote),
    capabilityVersion: typeof o.capabilityVersion === 'number' ? o.capabilityVersion : undefined,
  }));
}

/** The instance that last logged this device connecting (among running ones), or null. */
export function lastConnection(brokers: readonly BrokerRunner[], deviceId: string): DeviceConnected | null {
  const mine = deviceConnections(brokers).filter(
    (c) => c.deviceId === deviceId && brokers[c.instance]!.running,
  );
  return mine.at(-1) ?? null;
}

/** The running instance that last logged this relay connecting, or null. */
export function relayHolder(brokers: readonly BrokerRunner[], relayName: string): number | null {
  const mine = logEvents(brokers, 'relay connected').filter(
    (e) => e.o.relay === relayName && brokers[e.instance]!.running,
  );
  return mine.at(-1)?.instance ?? null;
}

/** Waits until every member's netmap has the device `id` under `name`. */
export async function waitPeerNamed(
  members: readonly LabMember[],
  id: string,
  name: string,
  timeoutMs = 30_000,
): Promise<void> {
  await Promise.all(
    members
      .filter((m) => m.id !== id)
      .map((m) =>
        waitFor(async () => (await m.agent.status()).peers.some((p) => p.id === id && p.name === name), {
          timeoutMs,
          intervalMs: 200,
          what: `${siteName(m)} sees ${id} as ${name}`,
        }),
      ),
  );
}

/** afterAll of a lab test: stops its pings, the lab and its database; returns what the lab left behind. */
export async function tearDownLab(
  lab: Lab | undefined,
  db: LabDatabase | undefined,
  pings: readonly LabProcess[],
): Promise<string[]> {
  for (const p of pings) await p.stop(2_000);
  await lab?.destroy();
  await db?.drop();
  return lab?.leftovers() ?? [];
}

/**
 * Waits until every ping has replies past `since` (and one in the last 500 ms); returns the pings
 * that did not get there, with how long after `since` each last replied (empty: all did).
 */
export async function waitRepliesPast(
  ps: readonly LabProcess[],
  since: number,
  timeoutMs: number,
): Promise<string[]> {
  const fresh = (p: LabProcess) => replyTimes(p.lines).some((t) => t > Date.now() - 500 && t > since);
  await waitFor(() => ps.every(fresh), { timeoutMs, intervalMs: 200 }).catch(() => undefined);
  return ps
    .filter((p) => !fresh(p))
    .map(
      (p) =>
        `ping ${p.argv.at(-1)}: last reply ${(replyTimes(p.lines).at(-1) ?? Number.NaN) - since} ms past`,
    );
}
