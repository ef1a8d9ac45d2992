import {
  AgentRunner,
  BrokerRunner,
  CgnatChain,
  type Device,
  FullConeNat,
  Lab,
  type LabProcess,
  PortRestrictedNat,
  replyTimes,
  type Site,
  type TrellisBuild,
  trellisBuild,
  waitFor,
  withTraffic,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Roaming (issue 3): two devices behind a port-restricted and a full-cone NAT go direct; while the
 * full-cone side pings the other over the overlay, the port-restricted site's router gets a new WAN
 * address. Traffic must resume (the target is 3 s; the measured gap is printed, and the bound
 * below is looser because CI machines are shared: it still fails the 15 s heartbeat-only recovery this
 * test caught), and the pinging side's `trellis status` must show the new
 * endpoint. The pinging side is the one that did not move: its WireGuard still points at the old
 * address, so only the reflector → broker → peer path (or the roamer's own traffic) can fix it.
 * Paths are made on demand: each test pings the peer (the traffic that wants the path) while it
 * waits for the direct path it starts from.
 */
const LISTEN_PORT = 51820;
const NEW_WAN = '192.0.2.200';
/**
 * Measured here 0.7–1.1 s alone (2.6 s in the full suite before the reflector refresh on
 * reconnect); without TCP keepalive on the control connection it was 13 s.
 */
const RESUME_WITHIN_MS = 6_000;
/**
 * Onto the peer's own LAN both sides are on one link: LAN round trips are a few ms and every
 * candidate needed is local, so this holds the 3 s target itself.
 */
const LAN_RESUME_WITHIN_MS = 3_000;
/**
 * A removal right after a move reaches the mover once its control connection is back: a dead one is
 * found by the move itself (its address is gone) or by the probe after it (4 s), then reconnected.
 */
const REMOVAL_AFTER_MOVE_WITHIN_MS = 8_000;

describe('roaming (a site router gets a new WAN address mid-ping)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let roamer: AgentRunner;
  let pinger: AgentRunner;
  let roamSite: Site;
  let pingerSite: Site;
  /** The roamer's device as it is now (each move gives it a new LAN address and site). */
  let roamerDevice: Device;
  let cafe: Site;
  let lte: Site;
  let mobile: AgentRunner;
  let pingProc: LabProcess | null = null;
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const host = await lab.addHost('brk', ['198.51.100.10', '198.51.100.11']);
    broker = new BrokerRunner(lab, host, build, ['--reflector2', '198.51.100.11:41642']);
    const [pr, fc, other] = await Promise.all([
      theLab.addSite('pr', new PortRestrictedNat(), ['d']),
      // Its device has its own name: the roamer (d) joins this LAN in the last test.
      theLab.addSite('fc', new FullConeNat(), ['p']),
      theLab.addSite('cafe', new PortRestrictedNat(), []),
    ]);
    cafe = other;
    lte = await theLab.addSite('lte', new CgnatChain(new PortRestrictedNat()), ['d']);
    mobile = new AgentRunner(theLab, lte.device('d'), LISTEN_PORT, build);
    roamSite = pr;
    pingerSite = fc;
    roamerDevice = pr.device('d');
    roamer = new AgentRunner(theLab, roamerDevice, LISTEN_PORT, build);
    pinger = new AgentRunner(theLab, fc.device('p'), LISTEN_PORT, build);
  }, 120_000);

  afterAll(async () => {
    await pingProc?.stop(2_000);
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  /**
   * Pings `address` from `from` every 100 ms; once replies flow, runs `change` (a move, a new
   * address) and waits for a reply sent after it. Times are ms since the epoch (`ping -D`).
   */
  async function pingAcross(
    from: AgentRunner,
    address: string,
    logName: string,
    change: () => Promise<unknown>,
  ): Promise<{ changedAt: number; changeDone: number; lastBefore: number; firstAfter: number }> {
    const proc = from.device.ns.spawn('ping', ['-n', '-D', '-i', '0.1', '-W', '1', address], { logName });
    pingProc = proc;
    // Steady replies first, so "before" is a real reply on the old path.
    await waitFor(async () => replyTimes(proc.lines).length >= 10, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `${logName}: replies before the change`,
    });
    const changedAt = Date.now();
    await change();
    const changeDone = Date.now();
    await waitFor(async () => replyTimes(proc.lines).some((t) => t > changeDone), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `${logName}: replies after the change`,
    });
    await proc.stop(2_000);
    const times = replyTimes(proc.lines);
    return {
      changedAt,
      changeDone,
      lastBefore: Math.max(...times.filter((t) => t <= changedAt)),
      firstAfter: Math.min(...times.filter((t) => t > changeDone)),
    };
  }

  labIt(
    L,
    'direct traffic resumes after the WAN address changes and status shows the new endpoint',
    async () => {
      await broker.start();
      const setupKey = await broker.createSetupKey();
      await Promise.all([roamer.start(), pinger.start()]);
      for (const a of [roamer, pinger]) await a.up({ broker: broker.url, setupKey, caFile: broker.certFile });
      const ids = await Promise.all([roamer, pinger].map((a) => a.waitConnected().then((s) => s.self)));
      const [roamerSelf, pingerSelf] = ids as [NonNullable<(typeof ids)[0]>, NonNullable<(typeof ids)[1]>];
      const peerOf = async (a: AgentRunner, id: string) => (await a.status()).peers.find((p) => p.id === id);
      await withTraffic(pinger, roamerSelf.address, () =>
        waitFor(
          async () =>
            (await peerOf(pinger, roamerSelf.id))?.path === 'direct-internet' &&
            (await peerOf(roamer, pingerSelf.id))?.path === 'direct-internet',
          { timeoutMs: 45_000, intervalMs: 300, what: 'both sides direct' },
        ),
      );
      const oldEndpoint = (await peerOf(pinger, roamerSelf.id))?.endpoint;
      expect(oldEndpoint).toBe(`${roamSite.publicAddress}:${LISTEN_PORT}`);

      const {
        changedAt,
        changeDone,
        lastBefore: before,
        firstAfter: after,
      } = await pingAcross(pinger, roamerSelf.address, 'ping-roaming', () =>
        roamSite.setPublicAddress(NEW_WAN),
      );
      const gap = after - before;
      const sinceChange = after - changeDone;
      process.stdout.write(
        `\nroaming: last reply before ${new Date(before).toISOString()}, first after ${new Date(after).toISOString()}; ` +
          `gap ${gap} ms, ${sinceChange} ms after the address change (change took ${changeDone - changedAt} ms)\n`,
      );
      expect(sinceChange).toBeLessThanOrEqual(RESUME_WITHIN_MS);
      // The roamer re-initiated to the reflectors when its control connection came back, so the
      // broker already knows its new reflexive address (its 25 s keepalive would be much later).
      const reflexive = (await roamer.status()).netinfo?.reflexive ?? [];
      expect(reflexive).toContain(`${NEW_WAN}:${LISTEN_PORT}`);

      const newEndpoint = `${NEW_WAN}:${LISTEN_PORT}`;
      await waitFor(async () => (await peerOf(pinger, roamerSelf.id))?.endpoint === newEndpoint, {
        timeoutMs: 10_000,
        intervalMs: 200,
        what: `pinger's status shows ${newEndpoint}`,
      });
      const st = await peerOf(pinger, roamerSelf.id);
      expect(st?.endpoint).toBe(newEndpoint);
      expect(st?.path).toBe('direct-internet');
    },
    100_000,
  );

  labIt(
    L,
    'an address added on the device itself is a new candidate at once (netlink, not the 2 s poll)',
    async () => {
      const added = '172.16.9.9';
      const candidate = `${added}:${LISTEN_PORT}`;
      const pingerView = async () =>
        (await pinger.status()).peers.find(
          (p) => p.name === roamer.device.name && p.candidates.includes(candidate),
        );
      const addedAt = Date.now();
      await roamer.device.ns.exec(['ip', 'addr', 'add', `${added}/24`, 'dev', 'eth0']);
      const seen = await waitFor(
        async () => {
          const line = roamer
            .logLines()
            .find((l) => l.includes('"msg":"local candidates"') && l.includes(candidate));
          return line ? (JSON.parse(line) as { time: number }).time : null;
        },
        { timeoutMs: 10_000, intervalMs: 20, what: `roamer logs ${candidate} as a local candidate` },
      );
      await waitFor(pingerView, { timeoutMs: 10_000, intervalMs: 50, what: `pinger sees ${candidate}` });
      const peerSaw = Date.now();
      process.stdout.write(
        `\nlocal address change: agent saw it ${seen - addedAt} ms after \`ip addr add\`, peer status within ${peerSaw - addedAt} ms\n`,
      );
      // Well under the 2 s poll interval: the change came from the netlink event.
      expect(seen - addedAt).toBeLessThan(1_500);
    },
    60_000,
  );

  labIt(
    L,
    'a device that moves to another site (new LAN, new NAT) is reached directly again',
    async () => {
      const roamerId = (await roamer.status()).self!.id;
      const address = (await roamer.status()).self!.address;
      const peerOf = async () => (await pinger.status()).peers.find((p) => p.id === roamerId);
      await withTraffic(pinger, address, () =>
        waitFor(async () => (await peerOf())?.path === 'direct-internet', {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: 'direct before the move',
        }),
      );
      const {
        changedAt: movedAt,
        changeDone: moveDone,
        firstAfter: after,
      } = await pingAcross(pinger, address, 'ping-site-move', async () => {
        roamerDevice = await cafe.adoptDevice(roamerDevice);
      });
      process.stdout.write(
        `\nsite move: first reply ${after - moveDone} ms after the device joined the new LAN (the move took ${moveDone - movedAt} ms)\n`,
      );
      expect(after - moveDone).toBeLessThanOrEqual(RESUME_WITHIN_MS);
      await waitFor(async () => (await peerOf())?.endpoint?.startsWith(`${cafe.publicAddress}:`) ?? false, {
        timeoutMs: 10_000,
        intervalMs: 200,
        what: `pinger's status shows the roamer behind ${cafe.publicAddress}`,
      });
    },
    100_000,
  );

  labIt(
    L,
    'a device behind CGNAT whose carrier address changes is reached directly again',
    async () => {
      await mobile.start();
      await mobile.up({
        broker: broker.url,
        setupKey: await broker.createSetupKey(),
        caFile: broker.certFile,
      });
      const self = await mobile.waitConnected().then((s) => s.self);
      const peerOf = async () => (await pinger.status()).peers.find((p) => p.id === self.id);
      await withTraffic(pinger, self.address, () =>
        waitFor(async () => (await peerOf())?.path === 'direct-internet', {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: 'pinger ↔ lte direct',
        }),
      );
      const carrierAddress = '192.0.2.201';
      const { changeDone, firstAfter: after } = await pingAcross(
        pinger,
        self.address,
        'ping-cgnat-renumber',
        () => lte.setPublicAddress(carrierAddress),
      );
      process.stdout.write(
        `\nCGNAT renumber: first reply ${after - changeDone} ms after the carrier's address changed\n`,
      );
      expect(after - changeDone).toBeLessThanOrEqual(RESUME_WITHIN_MS);
      await waitFor(async () => (await peerOf())?.endpoint?.startsWith(`${carrierAddress}:`) ?? false, {
        timeoutMs: 10_000,
        intervalMs: 200,
        what: `pinger's status shows lte behind ${carrierAddress}`,
      });
    },
    120_000,
  );

  labIt(
    L,
    "a device that moves onto its peer's own LAN (a router that does not hairpin) reaches it over the LAN",
    async () => {
      // Measured before the fix: the roamer never reached the peer again (no reply for 12 s).
      const pingerSelf = (await pinger.status()).self!;
      const pingerKey = (await pinger.wg()).publicKey;
      const roamerId = (await roamer.status()).self!.id;
      const roamerView = async () => (await roamer.status()).peers.find((p) => p.id === pingerSelf.id);
      const pingerView = async () => (await pinger.status()).peers.find((p) => p.id === roamerId);
      await withTraffic(roamer, pingerSelf.address, () =>
        waitFor(
          async () =>
            (await roamerView())?.path === 'direct-internet' &&
            (await pingerView())?.path === 'direct-internet',
          { timeoutMs: 30_000, intervalMs: 200, what: 'roamer ↔ pinger direct over the internet' },
        ),
      );
      expect((await roamerView())?.endpoint).toBe(`${pingerSite.publicAddress}:${LISTEN_PORT}`);

      const { changeDone, firstAfter } = await pingAcross(
        roamer,
        pingerSelf.address,
        'ping-onto-peer-lan',
        async () => {
          roamerDevice = await pingerSite.adoptDevice(roamerDevice);
        },
      );
      // The router does not hairpin and the lab has no relay: a reply can only have come over the LAN.
      const pingerLan = `${pinger.device.address}:${LISTEN_PORT}`;
      const wgEndpoint = (await roamer.wg()).peers.find((p) => p.publicKey === pingerKey)?.endpoint;
      process.stdout.write(
        `\nonto the peer's LAN: first reply ${firstAfter - changeDone} ms after the device joined it (WireGuard endpoint ${wgEndpoint})\n`,
      );
      expect(firstAfter - changeDone).toBeLessThanOrEqual(LAN_RESUME_WITHIN_MS);
      expect(wgEndpoint).toBe(pingerLan);
      // Both agents see (and report) the LAN path.
      const roamerLan = `${roamerDevice.address}:${LISTEN_PORT}`;
      await waitFor(
        async () => {
          const [r, p] = [await roamerView(), await pingerView()];
          return (
            r?.endpoint === pingerLan &&
            r.path === 'direct-lan' &&
            p?.endpoint === roamerLan &&
            p.path === 'direct-lan'
          );
        },
        { timeoutMs: 5_000, intervalMs: 200, what: `both sides on the LAN (${pingerLan} ↔ ${roamerLan})` },
      );
    },
    100_000,
  );

  labIt(
    L,
    'a device that moves to another site just before a peer is removed drops that peer within seconds',
    async () => {
      // Measured before the fix: the removed peer was still in the mover's WireGuard 20 s later.
      const mobileSelf = (await mobile.status()).self!;
      const mobileKey = (await mobile.wg()).publicKey;
      expect((await roamer.wg()).peers.some((p) => p.publicKey === mobileKey)).toBe(true);
      roamerDevice = await cafe.adoptDevice(roamerDevice);
      const movedAt = Date.now();
      await new Promise((r) => setTimeout(r, 1_000));
      await broker.removeDevice(mobileSelf.name);
      const removedAt = Date.now();
      await waitFor(async () => !(await roamer.wg()).peers.some((p) => p.publicKey === mobileKey), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: "the removed device's key to leave the mover's WireGuard",
      });
      const gone = Date.now();
      process.stdout.write(
        `
move then removal: the removed peer left the mover's WireGuard ${gone - removedAt} ms after the removal (${gone - movedAt} ms after the move)
`,
      );
      expect(gone - removedAt).toBeLessThanOrEqual(REMOVAL_AFTER_MOVE_WITHIN_MS);
    },
    100_000,
  );
});
