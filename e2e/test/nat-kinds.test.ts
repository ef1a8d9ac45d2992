import {
  AddressRestrictedNat,
  CgnatChain,
  FullConeNat,
  type Host,
  Lab,
  PortRestrictedNat,
  type Received,
  type RouterKind,
  type Site,
  SymmetricNat,
  startUdpEcho,
  startUdpPeer,
  UdpBlockedNat,
  udpPeer,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Each router kind of NATLAB.md, probed from a LAN host with a UDP echo server on two internet
 * addresses (A, B) that reports the source ip:port it sees and can answer from another socket.
 */
const A = '198.51.100.20';
const B = '198.51.100.21';
const LOCAL_PORT = 40000;

interface Expectation {
  kind: () => RouterKind;
  /** null: UDP does not get out at all. */
  mapping: 'endpoint-independent' | 'endpoint-dependent' | null;
  /** Can a different port of the same address (A:3479) reach the mapping? */
  fromOtherPort: boolean;
  /** Can an address never contacted (B:3479) reach the mapping? */
  fromOtherAddress: boolean;
}

const KINDS: Record<string, Expectation> = {
  pr: {
    kind: () => new PortRestrictedNat(),
    mapping: 'endpoint-independent',
    fromOtherPort: false,
    fromOtherAddress: false,
  },
  sym: {
    kind: () => new SymmetricNat(),
    mapping: 'endpoint-dependent',
    fromOtherPort: false,
    fromOtherAddress: false,
  },
  fc: {
    kind: () => new FullConeNat(),
    mapping: 'endpoint-independent',
    fromOtherPort: true,
    fromOtherAddress: true,
  },
  ar: {
    kind: () => new AddressRestrictedNat(),
    mapping: 'endpoint-independent',
    fromOtherPort: true,
    fromOtherAddress: false,
  },
  cg: {
    kind: () => new CgnatChain(new PortRestrictedNat()),
    mapping: 'endpoint-independent',
    fromOtherPort: false,
    fromOtherAddress: false,
  },
  ub: { kind: () => new UdpBlockedNat(), mapping: null, fromOtherPort: false, fromOtherAddress: false },
  prh: {
    kind: () => new PortRestrictedNat({ hairpin: true }),
    mapping: 'endpoint-independent',
    fromOtherPort: false,
    fromOtherAddress: false,
  },
  fch: {
    kind: () => new FullConeNat({ hairpin: true }),
    mapping: 'endpoint-independent',
    fromOtherPort: true,
    fromOtherAddress: true,
  },
};

describe('NAT kinds', () => {
  let lab: Lab | undefined;
  let echo: Host;
  const sites = new Map<string, Site>();
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    lab = await Lab.create();
    echo = await lab.addHost('echo', [A, B]);
    await startUdpEcho(lab, echo.ns, [`${A}:3478`, `${A}:3479`, `${B}:3478`, `${B}:3479`]);
    for (const [id, e] of Object.entries(KINDS)) sites.set(id, await lab.addSite(id, e.kind(), ['d1', 'd2']));
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  });

  const byId = (got: Received[], id: string) => got.find((r) => r.data.id === id);

  for (const [id, e] of Object.entries(KINDS)) {
    labIt(
      L,
      `${e.kind().name}: mapping ${e.mapping ?? 'none (UDP blocked)'}, filtering as expected`,
      async () => {
        const site = sites.get(id)!;
        const got = await udpPeer(lab!, site.device('d1').ns, {
          bind: LOCAL_PORT,
          gapMs: 300,
          steps: [
            { to: `${A}:3478`, msg: { op: 'echo', id: 'toA' } },
            { to: `${A}:3478`, msg: { op: 'reflect', id: 'otherPort', from: `${A}:3479` } },
            { to: `${A}:3478`, msg: { op: 'reflect', id: 'otherAddress', from: `${B}:3479` } },
            { to: `${B}:3478`, msg: { op: 'echo', id: 'toB' } },
          ],
        });
        const toA = byId(got, 'toA');
        const toB = byId(got, 'toB');
        if (e.mapping === null) {
          expect(got).toEqual([]);
          // Only UDP is blocked: the site is otherwise online.
          expect(await site.device('d1').ns.ping(A)).toBe(true);
          return;
        }
        expect(toA?.data.observed).toBeDefined();
        expect(toB?.data.observed).toBeDefined();
        const [addrA, portA] = toA!.data.observed!.split(':');
        const [addrB, portB] = toB!.data.observed!.split(':');
        // The internet sees the site's public address (the carrier's for CGNAT), never a private one.
        expect(addrA).toBe(site.publicAddress);
        expect(addrB).toBe(site.publicAddress);
        if (e.mapping === 'endpoint-independent') {
          expect(portB).toBe(portA);
        } else {
          expect(portB).not.toBe(portA);
        }
        expect(byId(got, 'otherPort') !== undefined).toBe(e.fromOtherPort);
        expect(byId(got, 'otherAddress') !== undefined).toBe(e.fromOtherAddress);
      },
    );
  }

  for (const [id, hairpin] of [
    ['pr', false],
    ['prh', true],
    ['fch', true],
  ] as const) {
    labIt(
      L,
      `${KINDS[id]!.kind().name}: LAN host reaches LAN host via the public address: ${hairpin}`,
      async () => {
        const site = sites.get(id)!;
        const d1 = startUdpPeer(lab!, site.device('d1').ns, {
          bind: LOCAL_PORT + 1,
          steps: [{ to: `${A}:3478`, msg: { op: 'echo', id: 'map' } }],
          lingerMs: 3_000,
        });
        const observed = (await d1.waitForLine(/"observed":"([\d.]+:\d+)"/))[1]!;
        await udpPeer(lab!, site.device('d2').ns, {
          bind: LOCAL_PORT + 2,
          steps: [{ to: observed, msg: { op: 'hello', id: 'hairpin' } }],
          lingerMs: 0,
        });
        await d1.waitForLine(/^done$/, 10_000);
        const hello = d1.lines.find((l) => l.includes('"hairpin"'));
        expect(hello !== undefined).toBe(hairpin);
        // Hairpinned traffic arrives from the public address, as from any internet peer.
        if (hairpin) expect(hello).toContain(`recv ${site.publicAddress}:`);
      },
    );
  }
  for (const id of ['pr', 'cg'] as const) {
    labIt(L, `${KINDS[id]!.kind().name}: a site moved to a new public address is seen there`, async () => {
      const site = sites.get(id)!;
      const before = site.publicAddress;
      const moved = id === 'pr' ? '192.0.2.201' : '192.0.2.202';
      const echoOnce = async () =>
        (
          await udpPeer(lab!, site.device('d1').ns, {
            bind: LOCAL_PORT + 3,
            steps: [{ to: `${A}:3478`, msg: { op: 'echo', id: 'r' } }],
            lingerMs: 500,
          })
        )[0]?.data.observed;
      expect(await echoOnce()).toBe(`${before}:${LOCAL_PORT + 3}`);
      await site.setPublicAddress(moved);
      expect(site.publicAddress).toBe(moved);
      expect(await echoOnce()).toBe(`${moved}:${LOCAL_PORT + 3}`);
    });
  }
});
