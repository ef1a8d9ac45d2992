import { CAPABILITY_VERSION, LEGACY_CAPABILITY_VERSION } from '@trellis/proto';
import {
  addMembers,
  type BrokerRunner,
  enrolled,
  type Host,
  Lab,
  LabDatabase,
  type LabMember,
  type LabProcess,
  lastConnection,
  lostReplies,
  PREVIOUS_RELEASE,
  type ProxiedCluster,
  previousReleaseBuild,
  proxiedCluster,
  RELAY_ADOPT_GRACE_MS,
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
 * Issue 15: "A rolling upgrade of the broker instances (one at a time, behind the proxy) loses no
 * data-plane packet and no change; an agent one version behind keeps its mesh." The previous
 * release (PREVIOUS_RELEASE, built from git) runs three instances on one PostgreSQL behind HAProxy
 * in TCP passthrough (it cannot read PROXY headers: each instance does TLS with the same
 * certificate), with its relay; four agents are of this build, one of the previous. Each instance
 * in turn is stopped, a change is made while it is down, and it comes back as this build on the
 * same database and arguments; pings run between new and new, new and old, direct and relayed.
 */
describe(`rolling upgrade from ${PREVIOUS_RELEASE.slice(0, 7)} behind HAProxy (TCP passthrough)`, () => {
  let current: TrellisBuild;
  let previous: TrellisBuild;
  let lab: Lab | undefined;
  let db: LabDatabase | undefined;
  let cluster: ProxiedCluster;
  let brokers: BrokerRunner[];
  let setupKey = '';
  let relayHost: Host;
  let members: LabMember[] = [];
  /** Enrolled during the upgrade. */
  let late: LabMember;
  const pings: LabProcess[] = [];
  let meshUp = false;
  const L = () => lab;
  const site = (name: string) => members.find((m) => siteName(m) === name)!;

  beforeAll(async () => {
    requireRoot();
    current = trellisBuild();
    previous = previousReleaseBuild();
    lab = await Lab.create();
    db = await LabDatabase.create();
    cluster = await proxiedCluster(lab, db, 'passthrough', previous);
    brokers = cluster.brokers;
    relayHost = await lab.addHost('rly1', '198.51.100.20');
    members = await addMembers(lab, [
      { site: 'fc1', kind: 'fc', build: current },
      { site: 'fc2', kind: 'fc', build: current },
      { site: 'sym3', kind: 'sym', build: previous },
      { site: 'sym1', kind: 'sym', build: current },
      { site: 'sym2', kind: 'sym', build: current },
    ]);
    late = (await addMembers(lab, [{ site: 'fc3', kind: 'fc', build: current }]))[0]!;
  }, 900_000);

  afterAll(async () => {
    expect(await tearDownLab(lab, db, pings)).toEqual([]);
  }, 60_000);

  labIt(
    L,
    "the previous release's cluster meshes new agents and an old one, direct and relayed",
    async () => {
      await cluster.start();
      await cluster.startRelays([relayHost], previous);
      setupKey = await cluster.enroll(members);
      expect(await settlePairs(members)).toEqual([]);
      meshUp = true;
    },
    300_000,
  );

  labIt(
    L,
    'instances replaced one at a time by this build: no ping lost, every change reaches every agent, the old one included',
    async () => {
      if (!meshUp) throw new Error('not run: the first test did not get the mesh up');
      const [fc1, fc2, old, sym1, sym2] = ['fc1', 'fc2', 'sym3', 'sym1', 'sym2'].map(site) as [
        LabMember,
        LabMember,
        LabMember,
        LabMember,
        LabMember,
      ];
      const { proxy, certFile, serverName } = cluster;
      const ps = [
        startPing(fc1, fc2, 'ping-new-new-direct'),
        startPing(fc1, old, 'ping-new-old-direct'),
        startPing(sym1, sym2, 'ping-new-new-relayed'),
        startPing(sym1, old, 'ping-new-old-relayed'),
      ];
      pings.push(...ps);
      await waitFor(async () => ps.every((p) => replyTimes(p.lines).length >= 10), {
        timeoutMs: 30_000,
        what: 'replies before',
      });
      const at = Date.now();
      const running = () => brokers.find((b) => b.running)!;
      /** What is changed while each instance is down, and how every agent is seen to have it. */
      const changes: Array<{ what: string; make: () => Promise<() => Promise<void>> }> = [
        {
          what: 'rename a new agent',
          make: async () => {
            await running().renameDevice(fc2.id, 'fc2-upgrading');
            return () => waitPeerNamed(members, fc2.id, 'fc2-upgrading');
          },
        },
        {
          what: 'enroll a new device',
          make: async () => {
            await late.agent.start();
            await late.agent.up({ broker: proxy.url, setupKey, caFile: certFile });
            await enrolled([late]);
            const { self } = await late.agent.waitConnected();
            return () => waitPeerNamed(members, late.id, self.name);
          },
        },
        {
          what: 'rename the old agent',
          make: async () => {
            await running().renameDevice(old.id, 'sym3-upgrading');
            return () => waitPeerNamed([...members, late], old.id, 'sym3-upgrading');
          },
        },
      ];
      const steps: string[] = [];
      let lastBack = 0;
      for (const [i, b] of brokers.entries()) {
        const t = Date.now();
        await b.stop();
        await proxy.waitServer(serverName(i), 'DOWN');
        const seen = await changes[i]!.make();
        b.build = current;
        await b.start();
        await proxy.waitServer(serverName(i), 'UP');
        const upMs = Date.now() - t;
        lastBack = Date.now();
        await seen();
        steps.push(
          `instance ${i + 1}: back as this build after ${upMs} ms; ${changes[i]!.what}: everyone has it after ${Date.now() - t} ms`,
        );
      }
      // Every instance is this build now; a change still reaches the old agent.
      await running().renameDevice(fc1.id, 'fc1-upgraded');
      await waitPeerNamed([...members, late], fc1.id, 'fc1-upgraded');
      const done = Date.now();
      const all = [...members, late];
      const versionsOf = () =>
        all.map((m) => ({ [siteName(m)]: lastConnection(brokers, m.id)?.capabilityVersion ?? null }));
      const afterUpgrade = versionsOf();
      // An agent refused by an old instance speaks 1 to the proxy's URL until a challenge announces
      // a version, and keeps that connection: its next one is on its own version. HAProxy drops
      // every session once (as on-marked-down does) and everyone reconnects.
      const cut = Date.now();
      for (const i of brokers.keys()) await proxy.shutdownSessions(serverName(i));
      await waitFor(() => all.every((m) => (lastConnection(brokers, m.id)?.time ?? 0) > cut), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'every device reconnected after HAProxy cut the sessions',
      });
      // Past the relay adoption grace from the last restart: the relay moved with each instance.
      const until = Math.max(cut + 5_000, lastBack + RELAY_ADOPT_GRACE_MS + 15_000);
      const stalled = await waitRepliesPast(ps, until, until - Date.now() + 30_000);
      for (const p of ps) await p.stop(2_000);
      const lost = ps.map((p) => lostReplies(p.lines, at));
      // The old agent keeps its whole mesh: every other device, late one included.
      const oldPeers = (await old.agent.status()).peers.map((p) => p.id).sort();
      const versions = versionsOf();
      process.stdout.write(
        `\nrolling upgrade from ${PREVIOUS_RELEASE.slice(0, 7)} in ${((done - at) / 1000).toFixed(1)} s:\n  ${steps.join('\n  ')}\n  pings lost ${lost.map((l, k) => `${ps[k]!.argv.at(-1)}: ${l.lost}/${l.of}`).join(', ')}\n  capability right after the upgrade: ${JSON.stringify(afterUpgrade)}\n  after one reconnection: ${JSON.stringify(versions)}\n`,
      );
      expect(stalled).toEqual([]);
      expect(lost.map((l) => l.lost)).toEqual([0, 0, 0, 0]);
      expect(oldPeers).toEqual(
        all
          .filter((m) => m !== old)
          .map((m) => m.id)
          .sort(),
      );
      const want = (m: LabMember) => (m === old ? LEGACY_CAPABILITY_VERSION : CAPABILITY_VERSION);
      expect(versions).toEqual(all.map((m) => ({ [siteName(m)]: want(m) })));
    },
    600_000,
  );
});
