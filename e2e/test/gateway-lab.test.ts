import {
  type Device,
  describeCapture,
  type Host,
  Lab,
  LanSegment,
  PacketCapture,
  PortRestrictedNat,
  routeGetDev,
  type Site,
  sleep,
  startUdpEcho,
  startWhoami,
  UdpProbe,
  type WhoamiServer,
  waitFor,
  whoami,
} from '../src';
import { exec } from '../src/exec';
import { labIt, requireRoot } from './support/lab-test';

/**
 * The gateway lab's plumbing alone, no agent (issue 14): a LAN segment behind two devices of a NAT
 * site, a LAN host on it, the whoami server on the lab internet, the nftables capture on a
 * device's physical interface and the UDP probe the failover tests measure with.
 *  internet: web (198.51.100.20, whoami on :80, UDP echo on :7000)
 *  site a (port-restricted NAT): gw1, gw2, both with lan0 on LAN 192.168.1.0/24 (h1 = .100)
 */
describe('gateway lab plumbing (no agents)', () => {
  let lab: Lab | undefined;
  let web: Host;
  let server: WhoamiServer;
  let site: Site;
  let lan: LanSegment;
  let gw1: Device;
  let gw2: Device;
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    lab = await Lab.create();
    web = await lab.addHost('web', '198.51.100.20');
    site = await lab.addSite('a', new PortRestrictedNat(), ['gw1', 'gw2']);
    gw1 = site.device('gw1');
    gw2 = site.device('gw2');
    lan = await LanSegment.create(lab, 'lan', 1);
    await lan.attachGateway(gw1);
    await lan.attachGateway(gw2);
    const h1 = await lan.addHost('h1');
    server = await startWhoami(lab, web.ns, web.address);
    await startUdpEcho(lab, h1.ns, [`${h1.address}:7000`]);
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  labIt(
    L,
    'a LAN host and its gateways reach each other; the gateways still use the site for the internet',
    async () => {
      const h1 = lan.host('h1');
      expect(h1.address).toBe('192.168.1.100');
      expect(lan.gatewayAddress(gw1)).toBe('192.168.1.1');
      expect(lan.gatewayAddress(gw2)).toBe('192.168.1.2');
      expect(await gw1.ns.ping(h1.address)).toBe(true);
      expect(await gw2.ns.ping(h1.address)).toBe(true);
      expect(await h1.ns.ping(lan.gatewayAddress(gw2))).toBe(true);
      expect(await routeGetDev(gw1.ns, web.address)).toBe('eth0');
      expect(await routeGetDev(gw1.ns, h1.address)).toBe('lan0');
      // Nothing but the gateways knows the LAN: the internet host has no route to it.
      expect(await web.ns.ping(h1.address, { waitS: 1 })).toBe(false);
    },
  );

  labIt(L, "the whoami server answers with the site's public address", async () => {
    const since = Date.now();
    expect(await whoami(gw1.ns, server.url)).toBe(site.publicAddress);
    expect(server.requestsFrom(since)).toEqual([site.publicAddress]);
  });

  labIt(
    L,
    'the capture sorts what leaves eth0: WireGuard port, control host, LAN, DNS, the rest',
    async () => {
      const cap = await PacketCapture.start(gw1.ns, {
        ifname: 'eth0',
        wireguardPort: 51820,
        controlAddresses: ['198.51.100.10'],
        lan: site.lan.prefix,
      });
      try {
        const empty = await cap.read();
        expect(empty.other + empty.dns + empty.wireguard + empty.leaks.length).toBe(0);
        expect(await whoami(gw1.ns, server.url)).toBe(site.publicAddress);
        await exec(gw1.ns.name, ['nc', '-4', '-n', '-u', '-w', '1', '-p', '51820', web.address, '9'], {
          input: 'wg\n',
        });
        await exec(gw1.ns.name, ['nc', '-4', '-n', '-u', '-w', '1', '198.51.100.10', '3478'], {
          input: 'x\n',
        });
        await gw1.ns
          .exec(['dig', '+time=1', '+tries=1', `@${web.address}`, 'www.example.net'])
          .catch(() => null);
        expect(await gw1.ns.ping(site.lan.gateway)).toBe(true);
        const r = await cap.read();
        process.stdout.write(`\ncapture on gw1 eth0: ${describeCapture(r)}\n`);
        expect(r.wireguard).toBeGreaterThanOrEqual(1);
        expect(r.control).toBeGreaterThanOrEqual(1);
        expect(r.lan).toBeGreaterThanOrEqual(1);
        expect(r.dns).toBeGreaterThanOrEqual(1);
        expect(r.other).toBeGreaterThanOrEqual(1);
        expect(r.leaks).toEqual([`${web.address} . tcp . 80`, `${web.address} . udp . 53`]);
        await cap.reset();
        expect((await cap.read()).other).toBe(0);
      } finally {
        await cap.stop();
      }
    },
  );

  labIt(
    L,
    'the UDP probe tells which address carried it, and counts the probes a link-down lost',
    async () => {
      const h1 = lan.host('h1');
      const probe = await UdpProbe.start(lab!, gw1.ns, { address: h1.address, port: 7000 });
      try {
        await waitFor(() => probe.lastVia() === lan.gatewayAddress(gw1), {
          timeoutMs: 10_000,
          what: 'probe replies',
        });
        const downAt = Date.now();
        await lan.setGatewayLink(gw1, false);
        await sleep(1_000);
        await lan.setGatewayLink(gw1, true);
        const upAt = Date.now();
        await waitFor(() => probe.carriedBy(lan.gatewayAddress(gw1), upAt), {
          timeoutMs: 15_000,
          what: 'probe replies after the link came back',
        });
        const f = probe.figures(downAt, lan.gatewayAddress(gw1), Date.now() - 500);
        process.stdout.write(`\nlink down 1 s: ${f.lost} probes lost, outage ${f.outageMs} ms\n`);
        expect(f.lost).toBeGreaterThanOrEqual(5);
        expect(f.outageMs).toBeGreaterThanOrEqual(500);
        expect(f.switchMs).not.toBeNull();
      } finally {
        await probe.stop();
      }
    },
  );

  labIt(L, 'without masquerade, a LAN host sends mesh addresses to the gateway it is told to', async () => {
    const h1 = lan.host('h1');
    await h1.routeOverlayVia(gw2);
    const { stdout } = await h1.ns.exec(['ip', '-j', 'route', 'get', '100.64.0.7']);
    expect((JSON.parse(stdout) as Array<{ gateway?: string }>)[0]?.gateway).toBe(lan.gatewayAddress(gw2));
  });
});
