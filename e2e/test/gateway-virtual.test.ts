import type { DeviceInfo } from '@trellis/proto';
import {
  AccessMesh,
  AgentRunner,
  addVirtualDevice,
  applyPolicy,
  type BannerServer,
  BrokerRunner,
  createAccessSetupKey,
  digA,
  LAB_ACCOUNT,
  Lab,
  type LanHost,
  LanSegment,
  PortRestrictedNat,
  RoutedRouter,
  readBanner,
  Steps,
  startBannerServer,
  startWhoami,
  type TrellisBuild,
  trellisBuild,
  type WhoamiServer,
  waitFor,
  whoami,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Virtual devices (issue 14) on the real broker and agents: LAN hosts without an agent, registered
 * by an admin behind a gateway, each with its own mesh address and name. The two sites' LANs
 * overlap (both 192.168.1.0/24, a camera at .100 on each): the mesh addresses tell them apart.
 *  site a (routed):                gwa, LAN lana 192.168.1.0/24: cam .100 (tcp 80 and 22 answer "A"),
 *                                  other .101 (not registered); both route the mesh via gwa
 *  site b (port-restricted NAT):   gwb, LAN lanb 192.168.1.0/24: cam .100 (tcp 80 and 22 answer "B")
 *  site c (port-restricted NAT):   c1 (tag:client): whoami on tcp 8080, a banner on tcp 8081
 * The policy lets group:viewers (tag:client) open tcp 80 on tag:cams and tag:cams open tcp 8080 on
 * tag:client, nothing else. The admin registers cama (gwa) and camb (gwb), both tag:cams.
 */
const ZONE = 'trellis.internal';
const CAM_LAN_ADDRESS = '192.168.1.100';
const PATH_TIMEOUT_MS = 90_000;
/** How long a netmap change (a registration, a removal) may take to reach the devices. */
const CHANGE_TIMEOUT_MS = 30_000;

const POLICY = `// issue 14 lab: cameras behind two gateways, as virtual devices
{
  "groups": { "group:viewers": ["tag:client"] },
  "tagOwners": { "tag:client": [], "tag:cams": [] },
  "rules": [
    { "src": ["group:viewers"], "dst": ["tag:cams"], "ports": ["tcp:80"] },
    { "src": ["tag:cams"], "dst": ["tag:client"], "ports": ["tcp:8080"] }
  ]
}
`;

const dnsName = (name: string) => `${name}.${LAB_ACCOUNT}.${ZONE}`;

describe('gateways: virtual devices behind two gateways with the same LAN (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let lanA: LanSegment;
  let lanB: LanSegment;
  let c1Web: WhoamiServer;
  const banners = new Map<string, BannerServer>();
  const cams = new Map<string, DeviceInfo>();
  const mesh = new AccessMesh(() => broker, PATH_TIMEOUT_MS);
  const steps = new Steps();
  const L = () => lab;
  const camHostA = (): LanHost => lanA.host('cam');
  const camHostB = (): LanHost => lanB.host('cam');
  const otherA = (): LanHost => lanA.host('other');
  const c1 = () => mesh.member('c1');
  const cam = (name: string): DeviceInfo => {
    const d = cams.get(name);
    if (!d) throw new Error(`${name} is not registered`);
    return d;
  };

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [a, b, c] = await Promise.all([
      theLab.addSite('a', new RoutedRouter(), ['gwa']),
      theLab.addSite('b', new PortRestrictedNat(), ['gwb']),
      theLab.addSite('c', new PortRestrictedNat(), ['c1']),
    ]);
    lanA = await LanSegment.create(lab, 'lana', 1);
    lanB = await LanSegment.create(lab, 'lanb', 1);
    await lanA.attachGateway(a.device('gwa'));
    await lanB.attachGateway(b.device('gwb'));
    for (const [lan, gw, text] of [
      [lanA, a.device('gwa'), 'A'],
      [lanB, b.device('gwb'), 'B'],
    ] as const) {
      const h = await lan.addHost('cam');
      await h.routeOverlayVia(gw);
      banners.set(text, await startBannerServer(h.ns, text, [80, 22]));
    }
    const other = await lanA.addHost('other');
    await other.routeOverlayVia(a.device('gwa'));
    c1Web = await startWhoami(lab, c.device('c1').ns, '0.0.0.0', 8080);
    await startBannerServer(c.device('c1').ns, 'c1', [8081]);
    broker = new BrokerRunner(lab, brokerHost, build);
    for (const d of [a.device('gwa'), b.device('gwb'), c.device('c1')]) {
      mesh.add(new AgentRunner(theLab, d, 51820, build));
    }
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  /** What c1's own DNS stub (on its mesh address) answers for `name`; null: no answer. */
  const resolveOnC1 = (name: string) => digA(mesh.ns('c1'), c1().overlay, dnsName(name));

  /** c1's view of the virtual devices and each gateway's forwarding table, for failure messages. */
  async function describeVirtual(): Promise<string> {
    const safe = async (f: () => Promise<string>) => f().catch((e: Error) => `(${e.message.split('\n')[0]})`);
    const status = await safe(async () => JSON.stringify((await mesh.agent('c1').status()).virtual ?? null));
    const wg = await safe(async () =>
      (await mesh.agent('c1').wg()).peers
        .map((p) => `${p.publicKey.slice(0, 8)} ${p.allowedIps.join(',')}`)
        .join('; '),
    );
    const tables = await Promise.all(
      ['gwa', 'gwb'].map((gw) =>
        safe(
          async () =>
            `${gw}:\n${(await mesh.ns(gw).exec(['nft', 'list', 'table', 'inet', 'trellis_gw'])).stdout}`,
        ),
      ),
    );
    return `c1 status.virtual ${status}\nc1 wg ${wg}\n${tables.join('\n')}`;
  }

  /** Packets the gateway's forwarding table (`inet trellis_gw`) has dropped so far. */
  async function gatewayDropped(gw: string): Promise<number> {
    const { stdout } = await mesh
      .ns(gw)
      .exec(['nft', '-j', 'list', 'counter', 'inet', 'trellis_gw', 'dropped']);
    const doc = JSON.parse(stdout) as { nftables: Array<{ counter?: { packets: number } }> };
    const c = doc.nftables.find((x) => x.counter)?.counter;
    if (!c) throw new Error(`${gw}: no counter dropped in inet trellis_gw`);
    return c.packets;
  }

  /** Like mesh.expectAllowed, with the virtual devices' state in the failure message. */
  async function expectReached(what: string, probe: () => Promise<boolean>): Promise<void> {
    await mesh.expectAllowed(what, probe).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await describeVirtual()}`);
    });
  }

  async function expectResolves(name: string, address: string): Promise<void> {
    let last: string[] | null = null;
    await waitFor(
      async () => {
        last = await resolveOnC1(name);
        return last?.length === 1 && last[0] === address;
      },
      { timeoutMs: CHANGE_TIMEOUT_MS, what: `c1 resolves ${dnsName(name)} to ${address}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last answer: ${JSON.stringify(last)})`);
    });
  }

  labIt(
    L,
    'two LAN segments share 192.168.1.0/24: each gateway reaches its own .100, and nothing else does',
    async () => {
      expect(camHostA().address).toBe(CAM_LAN_ADDRESS);
      expect(camHostB().address).toBe(CAM_LAN_ADDRESS);
      expect(otherA().address).toBe('192.168.1.101');
      expect(lanA.prefix).toBe(lanB.prefix);
      expect(await readBanner(mesh.ns('gwa'), CAM_LAN_ADDRESS, 80)).toBe('A');
      expect(await readBanner(mesh.ns('gwa'), CAM_LAN_ADDRESS, 22)).toBe('A');
      expect(await readBanner(mesh.ns('gwb'), CAM_LAN_ADDRESS, 80)).toBe('B');
      expect(await readBanner(mesh.ns('c1'), CAM_LAN_ADDRESS, 80, 1)).toBeNull();
    },
  );

  labIt(
    L,
    'registered cameras get distinct mesh addresses and names; c1 reaches both at once on tcp 80 only',
    async () => {
      await broker.start();
      await applyPolicy(broker, POLICY);
      const [clientKey, plainKey] = await Promise.all([
        createAccessSetupKey(broker, { tags: ['tag:client'] }),
        createAccessSetupKey(broker, {}),
      ]);
      await Promise.all([...mesh.agents.values()].map((x) => x.start()));
      await mesh.enroll('gwa', plainKey);
      await mesh.enroll('gwb', plainKey);
      await mesh.enroll('c1', clientKey);
      const gateways = await broker.devices();
      const idOf = (name: string) => gateways.find((d) => d.name === name)?.id;

      for (const [name, gateway] of [
        ['cama', 'gwa'],
        ['camb', 'gwb'],
      ] as const) {
        const info = await addVirtualDevice(broker, {
          name,
          lanAddress: CAM_LAN_ADDRESS,
          gateway,
          tags: ['tag:cams'],
        });
        expect(info).toMatchObject({
          name,
          dnsName: dnsName(name),
          publicKey: null,
          via: idOf(gateway),
          lanAddress: CAM_LAN_ADDRESS,
          tags: ['tag:cams'],
          online: false,
        });
        expect(info.address).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
        cams.set(name, info);
      }
      expect(cam('cama').address).not.toBe(cam('camb').address);
      const listed = await broker.devices();
      expect(
        listed
          .filter((d) => d.lanAddress !== null)
          .map((d) => d.name)
          .sort(),
      ).toEqual(['cama', 'camb']);

      // Names: c1's own stub answers both from its netmap.
      await expectResolves('cama', cam('cama').address);
      await expectResolves('camb', cam('camb').address);

      // tcp 80: each mesh address reaches its own site's camera, both at the same time.
      for (const [name, text] of [
        ['cama', 'A'],
        ['camb', 'B'],
      ] as const) {
        await expectReached(`c1 → ${name}:80 answers ${text}`, async () => {
          return (await readBanner(mesh.ns('c1'), cam(name).address, 80)) === text;
        });
      }
      const both = await Promise.all([
        readBanner(mesh.ns('c1'), cam('cama').address, 80),
        readBanner(mesh.ns('c1'), cam('camb').address, 80),
      ]);
      expect(both).toEqual(['A', 'B']);
      const seen = (await mesh.agent('c1').status()).virtual ?? [];
      expect(
        seen.map((v) => ({ name: v.name, address: v.address, via: v.via, reachable: v.reachable })),
      ).toEqual(
        expect.arrayContaining([
          { name: 'cama', address: cam('cama').address, via: 'gwa', reachable: true },
          { name: 'camb', address: cam('camb').address, via: 'gwb', reachable: true },
        ]),
      );
      expect(seen).toHaveLength(2);
      // tcp 22 listens on both cameras but the policy does not open it.
      const ssh = await Promise.all([
        readBanner(mesh.ns('c1'), cam('cama').address, 22),
        readBanner(mesh.ns('c1'), cam('camb').address, 22),
      ]);
      expect(ssh).toEqual([null, null]);
      // Dropped by the gateways: the cameras saw no tcp 22 connection but the first test's from gwa.
      expect(banners.get('A')!.acceptedFrom(22)).toEqual([lanA.gatewayAddress(mesh.agent('gwa').device)]);
      expect(banners.get('B')!.acceptedFrom(22)).toEqual([]);
      steps.complete('registered');
    },
    300_000,
  );

  labIt(
    L,
    "a camera opens c1:8080 and c1 sees the camera's own mesh address; nothing else on its LAN gets in",
    async () => {
      steps.needs('registered');
      const url = (port: number) => `http://${c1().overlay}:${port}/`;
      for (const [name, host] of [
        ['cama', camHostA()],
        ['camb', camHostB()],
      ] as const) {
        let seen: string | null = null;
        await expectReached(`${name} (LAN ${host.address}) → c1:8080`, async () => {
          seen = await whoami(host.ns, url(8080));
          return seen !== null;
        });
        expect(seen).toBe(cam(name).address);
      }
      // Only tcp 8080 is open to the cameras: c1's banner on 8081 stays out of reach.
      expect(await readBanner(camHostA().ns, c1().overlay, 8081)).toBeNull();
      expect(await readBanner(mesh.ns('c1'), '127.0.0.1', 8081)).toBe('c1');
      // The unregistered host next to cama, routed the same way, does not enter the mesh at all.
      const since = Date.now();
      const droppedBefore = await gatewayDropped('gwa');
      expect(await whoami(otherA().ns, url(8080))).toBeNull();
      expect(c1Web.requestsFrom(since)).toEqual([]);
      // gwa itself threw it away (c1's WireGuard would too, but the gateway must not forward it).
      expect(await gatewayDropped('gwa')).toBeGreaterThan(droppedBefore);
      expect(await whoami(camHostA().ns, url(8080))).toBe(cam('cama').address);
      steps.complete('lan-to-mesh');
    },
    300_000,
  );

  labIt(
    L,
    'removing camb (admin CLI) makes it unreachable and its name stop resolving; cama is untouched',
    async () => {
      steps.needs('registered');
      await broker.removeDevice('camb');
      expect((await broker.devices()).map((d) => d.name)).not.toContain('camb');
      await waitFor(async () => (await resolveOnC1('camb'))?.length === 0, {
        timeoutMs: CHANGE_TIMEOUT_MS,
        what: `c1: ${dnsName('camb')} no longer resolves`,
      });
      await waitFor(async () => (await readBanner(mesh.ns('c1'), cam('camb').address, 80)) === null, {
        timeoutMs: CHANGE_TIMEOUT_MS,
        what: 'c1 → camb:80 unreachable',
      });
      expect(await readBanner(mesh.ns('c1'), cam('camb').address, 80)).toBeNull();
      expect(await whoami(camHostB().ns, `http://${c1().overlay}:8080/`)).toBeNull();
      expect(((await mesh.agent('c1').status()).virtual ?? []).map((v) => v.name)).toEqual(['cama']);
      // The camera itself is still there: gwb reaches it on its LAN.
      expect(await readBanner(mesh.ns('gwb'), CAM_LAN_ADDRESS, 80)).toBe('B');
      expect(await resolveOnC1('cama')).toEqual([cam('cama').address]);
      expect(await readBanner(mesh.ns('c1'), cam('cama').address, 80)).toBe('A');
    },
    300_000,
  );
});
