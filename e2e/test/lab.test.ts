import { execSync } from 'node:child_process';
import {
  type Device,
  HandWireGuard,
  type Host,
  Lab,
  PortForwardRouter,
  RoutedRouter,
  type Site,
  startUdpEcho,
  startUdpPeer,
  sweepStale,
  udpPeer,
  waitFor,
} from '../src';
import { execQuiet } from '../src/exec';
import { isAlive } from '../src/names';
import { labIt, requireRoot } from './support/lab-test';

/** The basic lab: one internet host, a routed site and a port-forwarding site with two devices. */
describe('lab topology', () => {
  let lab: Lab | undefined;
  let server: Host;
  let routed: Site;
  let home: Site;
  let b1: Device;
  let a1: Device;
  let a2: Device;
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    lab = await Lab.create();
    server = await lab.addHost('srv', ['198.51.100.20', '198.51.100.21']);
    routed = await lab.addSite('b', new RoutedRouter(), ['b1']);
    home = await lab.addSite('a', new PortForwardRouter([{ port: 51820, device: 'a1' }]), ['a1', 'a2']);
    b1 = routed.device('b1');
    a1 = home.device('a1');
    a2 = home.device('a2');
    await startUdpEcho(lab, server.ns, ['198.51.100.20:3478', '198.51.100.21:3478']);
    // Building this lab takes 4–4.5 s here, and this hook got jest's 5 s default (it timed out in a
    // full e2e run): the same setup bound as the other lab files.
  }, 120_000);

  afterAll(async () => {
    const prefix = lab?.prefix;
    await lab?.destroy();
    if (prefix) expect(lab?.leftovers()).toEqual([]);
  }, 60_000);

  labIt(L, 'LAN hosts reach the internet through their router', async () => {
    expect(await a1.ns.ping(server.address)).toBe(true);
    expect(await a2.ns.ping(server.address)).toBe(true);
    expect(await b1.ns.ping(server.address)).toBe(true);
    // Devices at different sites reach each other's public addresses.
    expect(await a1.ns.ping(b1.address)).toBe(true);
    expect(await a1.ns.ping(a2.address)).toBe(true);
  });

  labIt(L, 'a routed site is reachable from the internet at its public LAN address', async () => {
    expect(b1.address).toMatch(/^203\.0\.113\./);
    expect(await server.ns.ping(b1.address)).toBe(true);
  });

  labIt(L, 'NAT hides the LAN: its traffic leaves from the WAN address, with the port kept', async () => {
    expect(home.publicAddress).toBe('192.0.2.12');
    const got = await udpPeer(lab!, a2.ns, {
      bind: 40123,
      steps: [{ to: '198.51.100.20:3478', msg: { op: 'echo', id: 'x' } }],
    });
    expect(got.map((r) => r.data.observed)).toEqual([`${home.publicAddress}:40123`]);
    // The internet has no route to the private LAN.
    expect(await server.ns.ping(a1.address, { waitS: 1 })).toBe(false);
    expect(await server.ns.ping(home.publicAddress, { waitS: 1 })).toBe(false);
  });

  labIt(L, 'unsolicited inbound UDP to a NAT site is dropped', async () => {
    const listener = startUdpPeer(lab!, a2.ns, { bind: 40200, steps: [], lingerMs: 2_500 });
    await listener.waitForLine(/^bound /);
    await udpPeer(lab!, server.ns, {
      bind: 0,
      steps: [{ to: `${home.publicAddress}:40200`, msg: { op: 'hello', id: 'unsolicited' } }],
      lingerMs: 0,
    });
    await listener.waitForLine(/^done$/);
    expect(listener.lines.filter((l) => l.startsWith('recv'))).toEqual([]);
  });

  labIt(L, 'the port forward delivers inbound UDP to its LAN host, source unchanged', async () => {
    const listener = startUdpPeer(lab!, a1.ns, { bind: 51820, steps: [], lingerMs: 2_500 });
    await listener.waitForLine(/^bound /);
    await udpPeer(lab!, server.ns, {
      bind: 5555,
      steps: [{ to: `${home.publicAddress}:51820`, msg: { op: 'hello', id: 'fwd' } }],
      lingerMs: 0,
    });
    const m = await listener.waitForLine(/^recv (\S+) /);
    expect(m[1]).toBe(`${server.address}:5555`);
    await listener.exited; // frees port 51820 for the next test
  });

  labIt(L, 'real wireguard-go carries pings between a routed and a port-forwarded site', async () => {
    const wgB = await HandWireGuard.start(lab!, b1.ns, {
      listenPort: 51820,
      address: '10.99.0.2',
      prefixLen: 24,
    });
    const wgA = await HandWireGuard.start(lab!, a1.ns, {
      listenPort: 51820,
      address: '10.99.0.1',
      prefixLen: 24,
    });
    // Each side knows the other only by its public address: b1 by its routed address, a1 by the
    // forwarded port on its router's WAN address.
    await wgA.addPeer({
      publicKey: wgB.publicKey,
      allowedIps: ['10.99.0.2/32'],
      endpoint: `${b1.address}:51820`,
    });
    await wgB.addPeer({
      publicKey: wgA.publicKey,
      allowedIps: ['10.99.0.1/32'],
      endpoint: `${home.publicAddress}:51820`,
    });
    // b1 initiates first: only the port forward can carry that packet in.
    await waitFor(() => b1.ns.ping('10.99.0.1'), { timeoutMs: 30_000, what: 'b1 → a1 over WireGuard' });
    await waitFor(() => a1.ns.ping('10.99.0.2'), { timeoutMs: 30_000, what: 'a1 → b1 over WireGuard' });
    const dumpA = await wgA.dump();
    const dumpB = await wgB.dump();
    expect(dumpA.peers[0]?.endpoint).toBe(`${b1.address}:51820`);
    expect(dumpB.peers[0]?.endpoint).toBe(`${home.publicAddress}:51820`);
    expect(dumpA.peers[0]?.latestHandshake).toBeGreaterThan(0);
    expect(dumpB.peers[0]?.rxBytes).toBeGreaterThan(0);
    await wgA.process.stop();
    await wgB.process.stop();
  });
});

describe('lab teardown', () => {
  beforeAll(requireRoot);

  it('deletes every namespace, link, socket and process it created', async () => {
    const lab = await Lab.create();
    const site = await lab.addSite('t', new PortForwardRouter([{ port: 51820, device: 'd' }]), ['d']);
    const wg = await HandWireGuard.start(lab, site.device('d').ns, {
      listenPort: 51820,
      address: '10.98.0.1',
      prefixLen: 24,
    });
    const sleeper = site.router.spawn('sleep', ['600']);
    const namespaces = execQuiet(null, ['ip', 'netns', 'list']).stdout;
    expect(namespaces).toContain(`${lab.prefix}inet`);
    expect(namespaces).toContain(`${lab.prefix}t-r`);
    expect(namespaces).toContain(`${lab.prefix}t-d`);
    await lab.destroy();
    expect(lab.leftovers()).toEqual([]);
    expect(isAlive(wg.process.pid)).toBe(false);
    expect(isAlive(sleeper.pid)).toBe(false);
    expect(execQuiet(null, ['ip', 'netns', 'list']).stdout).not.toContain(lab.prefix);
  });

  it('sweepStale removes leftovers of a dead run and its processes, and nothing of live runs', async () => {
    // A pid that is surely dead: a child that has exited.
    const deadPid = Number(execSync('sh -c "echo \\$\\$"').toString().trim());
    expect(isAlive(deadPid)).toBe(false);
    const stale = `tl${deadPid.toString(36)}_zz-x`;
    const live = await Lab.create({ sweep: false });
    try {
      expect(execQuiet(null, ['ip', 'netns', 'add', stale]).ok).toBe(true);
      const orphan = live.spawnIn(stale, 'sleep', ['600']);
      await waitFor(() => execQuiet(null, ['ip', 'netns', 'pids', stale]).stdout.trim() !== '', {
        what: 'orphan in stale namespace',
      });
      const removed = sweepStale();
      expect(removed).toContain(stale);
      expect(removed.some((n) => n.startsWith(live.prefix))).toBe(false);
      expect(execQuiet(null, ['ip', 'netns', 'list']).stdout).not.toContain(stale);
      expect(execQuiet(null, ['ip', 'netns', 'list']).stdout).toContain(`${live.prefix}inet`);
      await orphan.exited;
    } finally {
      execQuiet(null, ['ip', 'netns', 'del', stale]);
      await live.destroy();
    }
  });
});
