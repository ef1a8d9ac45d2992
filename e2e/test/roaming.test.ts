import {
  AgentRunner,
  BrokerRunner,
  CgnatChain,
  FullConeNat,
  Lab,
  type LabProcess,
  PortRestrictedNat,
  replyTimes,
  type Site,
  type TrellisBuild,
  trellisBuild,
  waitFor,
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
 */
const LISTEN_PORT = 51820;
const NEW_WAN = '192.0.2.200';
/**
 * Measured here 0.7–1.1 s alone (2.6 s in the full suite before the reflector refresh on
 * reconnect); without TCP keepalive on the control connection it was 13 s.
 */
const RESUME_WITHIN_MS = 6_000;

describe('roaming (a site router gets a new WAN address mid-ping)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let roamer: AgentRunner;
  let pinger: AgentRunner;
  let roamSite: Site;
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
      theLab.addSite('fc', new FullConeNat(), ['d']),
      theLab.addSite('cafe', new PortRestrictedNat(), []),
    ]);
    cafe = other;
    lte = await theLab.addSite('lte', new CgnatChain(new PortRestrictedNat()), ['d']);
    mobile = new AgentRunner(theLab, lte.device('d'), LISTEN_PORT, build);
    roamSite = pr;
    roamer = new AgentRunner(theLab, pr.device('d'), LISTEN_PORT, build);
    pinger = new AgentRunner(theLab, fc.device('d'), LISTEN_PORT, build);
  }, 120_000);

  afterAll(async () => {
    await pingProc?.stop(2_000);
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

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
      await waitFor(
        async () =>
          (await peerOf(pinger, roamerSelf.id))?.path === 'direct-internet' &&
          (await peerOf(roamer, pingerSelf.id))?.path === 'direct-internet',
        { timeoutMs: 45_000, intervalMs: 300, what: 'both sides direct' },
      );
      const oldEndpoint = (await peerOf(pinger, roamerSelf.id))?.endpoint;
      expect(oldEndpoint).toBe(`${roamSite.publicAddress}:${LISTEN_PORT}`);

      pingProc = pinger.device.ns.spawn('ping', ['-n', '-D', '-i', '0.1', '-W', '1', roamerSelf.address], {
        logName: 'ping-roaming',
      });
      const proc = pingProc;
      // Steady replies first, so "before" is a real reply on the old path.
      await waitFor(async () => replyTimes(proc.lines).length >= 10, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'ping replies before roaming',
      });

      const changedAt = Date.now();
      await roamSite.setPublicAddress(NEW_WAN);
      const changeDone = Date.now();
      await waitFor(async () => replyTimes(proc.lines).some((t) => t > changeDone), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'ping replies after roaming',
      });
      await proc.stop(2_000);
      const times = replyTimes(proc.lines);
      const before = Math.max(...times.filter((t) => t <= changedAt));
      const after = Math.min(...times.filter((t) => t > changeDone));
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
      await waitFor(async () => (await peerOf())?.path === 'direct-internet', {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'direct before the move',
      });
      const proc = pinger.device.ns.spawn('ping', ['-n', '-D', '-i', '0.1', '-W', '1', address], {
        logName: 'ping-site-move',
      });
      pingProc = proc;
      await waitFor(async () => replyTimes(proc.lines).length >= 10, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'ping replies before the move',
      });
      const movedAt = Date.now();
      await cafe.adoptDevice(roamer.device);
      const moveDone = Date.now();
      await waitFor(async () => replyTimes(proc.lines).some((t) => t > moveDone), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'ping replies after the move',
      });
      await proc.stop(2_000);
      const after = Math.min(...replyTimes(proc.lines).filter((t) => t > moveDone));
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
      await waitFor(async () => (await peerOf())?.path === 'direct-internet', {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'pinger ↔ lte direct',
      });
      const proc = pinger.device.ns.spawn('ping', ['-n', '-D', '-i', '0.1', '-W', '1', self.address], {
        logName: 'ping-cgnat-renumber',
      });
      pingProc = proc;
      await waitFor(async () => replyTimes(proc.lines).length >= 10, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'ping replies before the carrier renumbers',
      });
      const carrierAddress = '192.0.2.201';
      await lte.setPublicAddress(carrierAddress);
      const changeDone = Date.now();
      await waitFor(async () => replyTimes(proc.lines).some((t) => t > changeDone), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'ping replies after the carrier renumbered',
      });
      await proc.stop(2_000);
      const after = Math.min(...replyTimes(proc.lines).filter((t) => t > changeDone));
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
});
