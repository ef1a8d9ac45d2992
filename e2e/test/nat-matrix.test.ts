import type { StatusResponse } from '@trellis/proto';
import {
  AddressRestrictedNat,
  AgentRunner,
  BrokerRunner,
  CgnatChain,
  exec,
  FullConeNat,
  firstLogTime,
  type Host,
  Lab,
  logExcerpt,
  PortRestrictedNat,
  RelayRunner,
  type RouterKind,
  SymmetricNat,
  type TrellisBuild,
  trellisBuild,
  UdpBlockedNat,
  UpnpNat,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * NAT matrix of issues 3 and 4: one device behind each site, two sites per NAT kind (one for
 * UDP-blocked), all in one mesh with one shared relay, so that every pair of kinds (and each kind
 * with itself) is tried at once. Paths are made on demand: once every device is online, each sends
 * one ping to every other (WireGuard's packets for a dormant peer are the demand). Records for each
 * pair its path (direct or relay) and the time from that first traffic to it, prints the table, and fails if a pair the NATs allow to go direct is not
 * direct, or if any pair is not connected at all (the relay must carry the rest).
 */
type KindName = 'fc' | 'ar' | 'pr' | 'sym' | 'cgnat' | 'upnp' | 'udp-blocked';

const KINDS: Record<KindName, { make: () => RouterKind; sites: number; label: string }> = {
  fc: { make: () => new FullConeNat(), sites: 2, label: 'full cone' },
  ar: { make: () => new AddressRestrictedNat(), sites: 2, label: 'address-restricted' },
  pr: { make: () => new PortRestrictedNat(), sites: 2, label: 'port-restricted' },
  sym: { make: () => new SymmetricNat(), sites: 2, label: 'symmetric' },
  cgnat: { make: () => new CgnatChain(new PortRestrictedNat()), sites: 2, label: 'CGNAT + home NAT' },
  upnp: { make: () => new UpnpNat(), sites: 2, label: 'port-restricted + miniupnpd' },
  'udp-blocked': { make: () => new UdpBlockedNat(), sites: 1, label: 'UDP blocked' },
};
/** `TRELLIS_MATRIX_KINDS=fc,sym` limits the run to some kinds (debugging one cell). */
const NAMES = (Object.keys(KINDS) as KindName[]).filter(
  (k) => !process.env.TRELLIS_MATRIX_KINDS || process.env.TRELLIS_MATRIX_KINDS.split(',').includes(k),
);

/** Endpoint-independent mapping with filtering that lets a punch through (CGNAT chain: both layers are). */
const EIM: ReadonlySet<KindName> = new Set(['fc', 'ar', 'pr', 'cgnat']);

/**
 * Expected direct (issue 3): both sides map endpoint-independently (full cone, address- and
 * port-restricted, and a CGNAT chain of such NATs, with each other), or symmetric with full cone /
 * address-restricted. A port-mapped router (miniupnpd) opens its mapping to anyone, so it goes
 * direct with every kind that can send UDP. Symmetric with symmetric or port-restricted, and UDP
 * blocked: the relay's job.
 */
function expectDirect(a: KindName, b: KindName): boolean {
  if (a === 'udp-blocked' || b === 'udp-blocked') return false;
  if (a === 'upnp' || b === 'upnp') return true;
  if (EIM.has(a) && EIM.has(b)) return true;
  const other = a === 'sym' ? b : b === 'sym' ? a : null;
  return other === 'fc' || other === 'ar';
}

const LISTEN_PORT = 51820;
/** After the last device is online, how long pairs get to go direct. */
const SETTLE_MS = 45_000;

interface Member {
  kind: KindName;
  agent: AgentRunner;
  id: string;
}

interface PairResult {
  a: Member;
  b: Member;
  expected: boolean;
  direct: boolean;
  /** Both sides hold a relay path (the pairs that cannot go direct). */
  relayed: boolean;
  /** From the first traffic (all online) to the first direct (else relay) path either side saw. */
  ms: number | null;
}

describe('NAT matrix (real broker + agents, every pair of NAT kinds)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let relay: RelayRunner;
  let relayHost: Awaited<ReturnType<Lab['addHost']>>;
  const members: Member[] = [];
  /** The mesh is up and the matrix measured (later tests reuse it). */
  let done = false;
  const L = () => lab;
  const member = (kind: KindName, n = 0) => members.filter((m) => m.kind === kind)[n];

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    // Two reflector addresses: comparing what both see classifies each NAT's mapping. The first binds
    // 0.0.0.0:41641, so the second needs another port.
    const host = await lab.addHost('brk', ['198.51.100.10', '198.51.100.11']);
    broker = new BrokerRunner(lab, host, build, ['--reflector2', '198.51.100.11:41642']);
    relayHost = await lab.addHost('rly', '198.51.100.20');
    const plan = NAMES.flatMap((kind) =>
      Array.from({ length: KINDS[kind].sites }, (_, i) => ({
        kind,
        site: `${kind.replace('-', '')}${i + 1}`,
      })),
    );
    const sites = await Promise.all(
      plan.map(async (p) => ({ ...p, site: await theLab.addSite(p.site, KINDS[p.kind].make(), ['d']) })),
    );
    for (const s of sites) {
      const agent = new AgentRunner(theLab, s.site.device('d'), LISTEN_PORT, build);
      members.push({ kind: s.kind, agent, id: '' });
    }
  }, 180_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  labIt(
    L,
    'every pair the NAT kinds allow goes direct; every other pair connects through the relay',
    async () => {
      await broker.start();
      relay = new RelayRunner(
        lab!,
        relayHost,
        'relay1',
        broker,
        await broker.createRelayToken('relay1'),
        build,
      );
      await relay.start();
      const setupKey = await broker.createSetupKey();
      await Promise.all(members.map((m) => m.agent.start()));
      for (const m of members) await m.agent.up({ broker: broker.url, setupKey, caFile: broker.certFile });
      const addresses = new Map<Member, string>();
      await Promise.all(
        members.map(async (m) => {
          const st = await m.agent.waitConnected();
          m.id = st.self!.id;
          addresses.set(m, st.self!.address);
        }),
      );
      // Paths on demand: no pair is punched until it has traffic. One ping each way per pair, all at
      // once (not awaited: a relayed pair answers later, and the matrix polls for paths meanwhile).
      // One shell starts them all: each process this test process spawns blocks it while it forks
      // (0.1–0.3 s here, per a CPU profile), and 156 spawns blocked it for up to 15 s, the last
      // pairs' traffic starting that much after the first.
      const trafficAt = Date.now();
      const script = members.map((m) => {
        const peers = members.filter((o) => o !== m).map((o) => addresses.get(o)!);
        const each = `for a in ${peers.join(' ')}; do ping -n -q -c 1 -W 1 $a >/dev/null & done; wait`;
        return `ip netns exec ${m.agent.device.ns.name} sh -c '${each}' &`;
      });
      const pings = exec(null, ['sh', '-c', [...script, 'wait'].join('\n')], { timeoutMs: 60_000 }).catch(
        () => undefined,
      );

      const pairs: PairResult[] = [];
      for (let i = 0; i < members.length; i++)
        for (let j = i + 1; j < members.length; j++) {
          const a = members[i]!;
          const b = members[j]!;
          pairs.push({
            a,
            b,
            expected: expectDirect(a.kind, b.kind),
            direct: false,
            relayed: false,
            ms: null,
          });
        }

      const logged = (m: Member, peer: Member, msg: string) =>
        firstLogTime(m.agent.logLines(), (o) => o.msg === msg && o.peerId === peer.id);

      // What the agents hold now, per `trellis status`, on both sides (a path seen once may be gone).
      let statuses = new Map<string, StatusResponse>();
      const poll = async () => {
        statuses = new Map(
          await Promise.all(members.map(async (m) => [m.id, await m.agent.status()] as const)),
        );
      };
      const pathOf = (m: Member, peer: Member) =>
        statuses.get(m.id)?.peers.find((p) => p.id === peer.id)?.path ?? 'none';
      const both = (p: PairResult, f: (path: string) => boolean) =>
        f(pathOf(p.a, p.b)) && f(pathOf(p.b, p.a));
      const isDirect = (path: string) => path.startsWith('direct');
      const settled = (p: PairResult) => both(p, isDirect) || (!p.expected && both(p, (x) => x === 'relay'));
      // Wait for every pair (not failing here: the table below says which did not).
      await waitFor(
        async () => {
          await poll();
          return pairs.every(settled);
        },
        { timeoutMs: SETTLE_MS, intervalMs: 500, what: 'every pair direct or relayed' },
      ).catch(() => undefined);
      await poll();
      // A relayed pair that might go direct (the NAT kinds do not rule it out for the broker, which
      // knows mappings, not filtering) is punched again with backoff, and the punch takes both sides
      // off the relay for up to ~0.9 s (README "Not yet built"). A pair caught in such a probe must be
      // back on the relay within a few seconds, or it counts as not connected.
      const probing = () =>
        pairs.filter((p) => !p.expected && !both(p, isDirect) && !both(p, (x) => x === 'relay'));
      if (probing().length > 0)
        await waitFor(
          async () => {
            await poll();
            return probing().length === 0;
          },
          { timeoutMs: 3_000, intervalMs: 250, what: 'relayed pairs back on the relay after a probe' },
        ).catch(() => undefined);
      for (const p of pairs) {
        p.direct = both(p, isDirect);
        p.relayed = !p.direct && both(p, (x) => x === 'relay');
        const msg = p.direct ? 'path direct' : 'path relay';
        const t = [logged(p.a, p.b, msg), logged(p.b, p.a, msg)].filter((x): x is number => x !== null);
        p.ms = (p.direct || p.relayed) && t.length > 0 ? Math.max(0, Math.min(...t) - trafficAt) : null;
      }
      await pings;

      process.stdout.write(`\n${renderMatrix(pairs)}\n`);
      done = true;
      const missing = pairs.filter((p) => (p.expected && !p.direct) || (!p.direct && !p.relayed));
      if (missing.length > 0) {
        const names = missing.map(
          (p) =>
            `${p.a.agent.device.site.name} ↔ ${p.b.agent.device.site.name} (${p.expected ? 'direct' : 'relay'})`,
        );
        const why = missing.map((p) => explainPair(p, pathOf, broker.logLines(), trafficAt)).join('\n');
        // The why first: CI shows the start and the end of a long failure, not its middle.
        throw new Error(
          `pairs not connected as expected: ${names.join(', ')}\n${why}\n\n${renderMatrix(pairs)}`,
        );
      }
    },
    420_000,
  );

  labIt(
    L,
    'trellis netcheck classifies the NAT; trellis ping shows the direct path per reply',
    async () => {
      if (!done) throw new Error('not run: the matrix test did not get the mesh up');
      const pr = member('pr');
      const sym = member('sym');
      const fc = member('fc');
      const fc2 = member('fc', 1);
      if (!pr || !sym || !fc || !fc2)
        throw new Error('needs kinds pr, sym and fc (see TRELLIS_MATRIX_KINDS)');
      const prCheck = await pr.agent.cli(['netcheck']);
      expect(prCheck).toMatch(/NAT mapping:\s+endpoint-independent/);
      expect(prCheck).toContain(`reflexive:     ${pr.agent.device.site.publicAddress}:${LISTEN_PORT}`);
      expect(prCheck).toMatch(/broker rtt:\s+\d+ ms/);
      expect(await sym.agent.cli(['netcheck'])).toMatch(/NAT mapping:\s+endpoint-dependent/);
      const upnp = member('upnp');
      if (upnp) {
        // The device behind miniupnpd got a mapping on its router's WAN address and offers it.
        const wan = upnp.agent.device.site.publicAddress.replace(/\./g, '\\.');
        expect(await upnp.agent.cli(['netcheck'])).toMatch(new RegExp(`port mapping:\\s+${wan}:\\d+ `));
        expect(prCheck).toMatch(/port mapping:\s+none/);
      }

      const peerName = (await fc2.agent.status()).self!.name;
      // A lost ping is not what this checks (seen once: 0/3 right after the matrix): up to 3 runs.
      let out = '';
      let lastError: Error | null = null;
      for (let i = 0; i < 3 && !out; i++) {
        out = await fc.agent.cli(['ping', '-c', '3', peerName]).catch((err: Error) => {
          lastError = err;
          return '';
        });
      }
      if (!out) {
        const address = (await fc2.agent.status()).self!.address;
        const plain = await fc.agent.device.ns.ping(address);
        const dump = await fc.agent.wg();
        throw new Error(
          `${String(lastError)}\nplain ping of ${address}: ${plain ? 'ok' : 'no reply'}\n${JSON.stringify(dump).slice(0, 3000)}`,
        );
      }
      const replies = out.split('\n').filter((l) => l.startsWith('reply from'));
      expect(replies.length).toBeGreaterThanOrEqual(1);
      for (const r of replies)
        expect(r).toMatch(
          new RegExp(
            `time=[\\d.]+ ms path=direct internet ${fc2.agent.device.site.publicAddress.replace(/\./g, '\\.')}:\\d+$`,
          ),
        );
    },
    120_000,
  );

  labIt(
    L,
    'the relay forwards a UDP-relayed pair in the kernel (its default where it may)',
    async () => {
      if (!done) throw new Error('not run: the matrix test did not get the mesh up');
      const a = member('sym');
      const b = member('sym', 1);
      if (!a || !b) throw new Error('needs two symmetric sites (see TRELLIS_MATRIX_KINDS)');
      expect(relay.logLines().some((l) => l.includes('kernel forwarding on'))).toBe(true);
      const before = await kernelForwardedPackets(relayHost);
      const out = await a.agent.cli(['ping', '-c', '5', (await b.agent.status()).self!.name]);
      const replies = out.split('\n').filter((l) => l.startsWith('reply from'));
      expect(replies.length).toBeGreaterThanOrEqual(3);
      for (const r of replies) expect(r).toMatch(/via relay relay1 /);
      // Every echo and reply went through the relay; the kernel's counters saw them.
      expect((await kernelForwardedPackets(relayHost)) - before).toBeGreaterThanOrEqual(2 * replies.length);
    },
    60_000,
  );
});

/**
 * What each side and the broker did about a pair that did not connect (the lab's logs are gone
 * once CI's machine is), times from the first traffic.
 */
function explainPair(
  p: PairResult,
  pathOf: (m: Member, peer: Member) => string,
  brokerLines: readonly string[],
  since: number,
): string {
  const name = (m: Member) => m.agent.device.site.name;
  const ids = new Set([p.a.id, p.b.id]);
  const aboutPair = (o: Record<string, unknown>) =>
    (ids.has(String(o.a)) && ids.has(String(o.b)) && o.a !== o.b) ||
    (ids.has(String(o.deviceId)) && ids.has(String(o.peerId)) && o.deviceId !== o.peerId);
  const side = (m: Member, peer: Member) => [
    `  ${name(m)} (${m.id}) holds ${pathOf(m, peer)}:`,
    ...logExcerpt(m.agent.logLines(), (o) => o.peerId === peer.id, since).map((l) => `    ${l}`),
  ];
  return [
    `${name(p.a)} ↔ ${name(p.b)}:`,
    ...side(p.a, p.b),
    ...side(p.b, p.a),
    '  broker:',
    ...logExcerpt(brokerLines, aboutPair, since).map((l) => `    ${l}`),
  ].join('\n');
}

/** Packets the relay host's kernel forwarded for allocations (trellis-relay's nftables counters). */
async function kernelForwardedPackets(host: Host): Promise<number> {
  const { stdout } = await host.ns.exec([
    'nft',
    '-j',
    'list',
    'counters',
    'table',
    'netdev',
    'trellis_relay',
  ]);
  const items = (JSON.parse(stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> })
    .nftables;
  return items
    .filter((i) => i.counter?.name.startsWith('fwd_'))
    .reduce((sum, i) => sum + i.counter!.packets, 0);
}

/** Kind × kind: the slowest time of that kind pair ("relay N ms" when relayed), or FAIL. */
function renderMatrix(pairs: PairResult[]): string {
  const cell = (x: KindName, y: KindName): string => {
    const ps = pairs.filter((p) => (p.a.kind === x && p.b.kind === y) || (p.a.kind === y && p.b.kind === x));
    if (ps.length === 0) return '-';
    if (ps.some((p) => (p.expected && !p.direct) || (!p.direct && !p.relayed))) return 'FAIL';
    if (ps.every((p) => p.relayed)) return `relay ${Math.max(...ps.map((p) => p.ms ?? 0))} ms`;
    const times = ps.filter((p) => p.direct).map((p) => p.ms ?? 0);
    const worst = `${Math.max(...times)} ms`;
    const partial = ps.some((p) => !p.direct) ? ' (some)' : '';
    return ps[0]!.expected ? `${worst}${partial}` : `${worst}${partial} *`;
  };
  const header = ['', ...NAMES];
  const rows = NAMES.map((x) => [x, ...NAMES.map((y) => cell(x, y))]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const detail = pairs.map(
    (p) =>
      `  ${p.a.agent.device.site.name.padEnd(13)} ↔ ${p.b.agent.device.site.name.padEnd(13)} ${
        p.direct ? `direct ${p.ms ?? '?'} ms` : p.relayed ? `relay ${p.ms ?? '?'} ms` : 'NOT CONNECTED'
      }${p.expected ? '' : ' (cannot go direct)'}`,
  );
  return [
    'NAT matrix: slowest time from the first traffic (one ping each way, all online) to the first direct path per kind pair (relay N ms: to the relayed path, for pairs that cannot go direct); * = direct though not required',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    'pairs:',
    ...detail,
  ].join('\n');
}
