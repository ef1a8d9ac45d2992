import {
  addMembers,
  type BrokerRunner,
  deviceConnections,
  type Host,
  Lab,
  LabDatabase,
  type LabMember,
  type LabProcess,
  lastConnection,
  lostReplies,
  PROXY_ADDRESS,
  type ProxiedCluster,
  proxiedCluster,
  RELAY_ADOPT_GRACE_MS,
  relayHolder,
  replyTimes,
  settlePairs,
  siteName,
  startPing,
  type TrellisBuild,
  tearDownLab,
  trellisBuild,
  waitFor,
  waitPeerNamed,
  waitRepliesPast,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Issue 15: infra/compose's topology in the lab. Three instances on one PostgreSQL with
 * --plain-http --proxy-protocol behind one HAProxy that ends TLS and sends PROXY v2 (one public URL
 * every agent and both relays use), agents at NAT sites of four kinds. The instances see each
 * device's post-NAT address; pairs go direct or relayed as the NATs allow; an instance killed
 * mid-ping is taken out by HAProxy's checks, its devices come back through the same URL, a rename
 * made afterwards reaches everyone, and no ping is lost.
 */
const SITES = [
  { site: 'fc1', kind: 'fc' },
  { site: 'fc2', kind: 'fc' },
  { site: 'pr1', kind: 'pr' },
  { site: 'sym1', kind: 'sym' },
  { site: 'sym2', kind: 'sym' },
  { site: 'ub1', kind: 'ub' },
] as const;
const RELAY_ADDRESSES = ['198.51.100.20', '198.51.100.21'];
/** A dead instance's devices must be on another one within this (issue 9 §3; HAProxy adds none). */
const FAILOVER_MS = 5_000;
/** Pings run this long after the kill: past the relay adoption grace (the relay moved too). */
const AFTER_KILL_MS = RELAY_ADOPT_GRACE_MS + 15_000;

describe('three instances behind one TLS-terminating HAProxy (PROXY v2), agents at NAT sites', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let db: LabDatabase | undefined;
  let cluster: ProxiedCluster;
  let brokers: BrokerRunner[];
  let relayHosts: Host[];
  let members: LabMember[] = [];
  const pings: LabProcess[] = [];
  let meshUp = false;
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    db = await LabDatabase.create();
    cluster = await proxiedCluster(lab, db, 'tls', build);
    brokers = cluster.brokers;
    relayHosts = await Promise.all(RELAY_ADDRESSES.map((a, i) => theLab.addHost(`rly${i + 1}`, a)));
    members = await addMembers(
      lab,
      SITES.map((s) => ({ ...s, build })),
    );
  }, 180_000);

  afterAll(async () => {
    expect(await tearDownLab(lab, db, pings)).toEqual([]);
  }, 60_000);

  labIt(
    L,
    'every agent enrolls through the proxy, the instances see post-NAT addresses, pairs settle as the NATs allow',
    async () => {
      await cluster.start();
      await cluster.startRelays(relayHosts, build);
      await cluster.enroll(members);
      for (const m of members) {
        const st = await m.agent.status();
        expect({ [siteName(m)]: st.peers.length }).toEqual({ [siteName(m)]: members.length - 1 });
        expect(st.broker.url && new URL(st.broker.url).host).toBe(PROXY_ADDRESS);
      }

      // Each instance took the device's address from the PROXY header: its site's public address,
      // never HAProxy's (a UDP-blocked site has no reflexive candidate that could supply it).
      const seen = Object.fromEntries(
        members.map((m) => [siteName(m), lastConnection(brokers, m.id)?.remote.split(':')[0] ?? null]),
      );
      expect(seen).toEqual(
        Object.fromEntries(members.map((m) => [siteName(m), m.agent.device.site.publicAddress])),
      );
      const records = await brokers[1]!.devices();
      const ub = members.find((m) => m.kind === 'ub')!;
      const ubHosts = records.find((d) => d.id === ub.id)!.endpoints.map((e) => e.split(':')[0]);
      expect(ubHosts).toContain(ub.agent.device.site.publicAddress);
      expect(records.flatMap((d) => d.endpoints).filter((e) => e.startsWith(`${PROXY_ADDRESS}:`))).toEqual(
        [],
      );
      // leastconn spread the devices (and relays) over the three instances.
      const holders = new Set(members.map((m) => lastConnection(brokers, m.id)?.instance));
      expect(holders.size).toBeGreaterThan(1);

      expect(await settlePairs(members)).toEqual([]);
      meshUp = true;
    },
    300_000,
  );

  labIt(
    L,
    'an instance killed mid-ping: HAProxy takes it out, its devices reconnect through the same URL, a rename reaches everyone, no reply lost',
    async () => {
      if (!meshUp) throw new Error('not run: the first test did not get the mesh up');
      const of = (site: string) => members.find((m) => siteName(m) === site)!;
      const [sym1, sym2, fc1, fc2] = ['sym1', 'sym2', 'fc1', 'fc2'].map(of) as [
        LabMember,
        LabMember,
        LabMember,
        LabMember,
      ];
      const { proxy, serverName } = cluster;
      // The victim holds the relay of the relayed pair: the relay moves to another instance too.
      const relayName = (await sym1.agent.status()).peers.find((p) => p.id === sym2.id)?.relayName;
      const victim = relayHolder(brokers, relayName ?? '');
      if (victim === null) throw new Error(`no instance holds ${relayName}, the relay of sym1 ↔ sym2`);
      const on = members.filter((m) => lastConnection(brokers, m.id)?.instance === victim);
      const ps = [startPing(sym1, sym2, 'ping-relayed'), startPing(fc1, fc2, 'ping-direct')];
      pings.push(...ps);
      await waitFor(async () => ps.every((p) => replyTimes(p.lines).length >= 10), {
        timeoutMs: 30_000,
        what: 'replies before',
      });
      const at = Date.now();
      await brokers[victim]!.kill();
      await proxy.waitServer(serverName(victim), 'DOWN');
      const downMs = Date.now() - at;
      // Each of its devices connected to another instance, through the proxy: timed by that
      // instance's log.
      await waitFor(
        () =>
          on.every((m) => {
            const c = lastConnection(brokers, m.id);
            return c !== null && c.time > at && c.instance !== victim;
          }),
        { timeoutMs: 30_000, intervalMs: 100, what: `${on.map(siteName).join(', ')} on another instance` },
      );
      const moved = on.map((m) => lastConnection(brokers, m.id)!.time - at);
      for (const m of on) await m.agent.waitConnected();
      const back = deviceConnections(brokers).filter((c) => c.time > at);
      expect(back.filter((c) => c.remote.startsWith(`${PROXY_ADDRESS}:`))).toEqual([]);

      // A change made now, on a surviving instance, reaches every device wherever it is held.
      const survivor = brokers.find((b) => b.running)!;
      await survivor.renameDevice(fc2.id, 'fc2-renamed');
      await waitPeerNamed(members, fc2.id, 'fc2-renamed');

      // Past the kill by AFTER_KILL_MS: a ping that stopped replying for good is named here.
      const stalled = await waitRepliesPast(ps, at + AFTER_KILL_MS, AFTER_KILL_MS + 30_000);
      for (const p of ps) await p.stop(2_000);
      const lost = ps.map((p) => lostReplies(p.lines, at));
      process.stdout.write(
        `\nproxy topology: instance ${victim + 1} killed (${on.map(siteName).join(', ')} on it): HAProxy marked it DOWN after ${downMs} ms; devices back through the proxy after ${moved.join(', ')} ms; pings lost ${lost.map((l) => `${l.lost}/${l.of}`).join(' (relayed), ')} (direct)\n`,
      );
      expect(stalled).toEqual([]);
      expect(moved.filter((ms) => ms > FAILOVER_MS)).toEqual([]);
      expect(lost.map((l) => l.lost)).toEqual([0, 0]);
    },
    240_000,
  );
});
