import { join } from 'node:path';
import { generateKeyPair } from '@trellis/noise';
import { classifyNatMapping, type Observation } from '@trellis/reflector';
import { NetnsLab, type NodeChild } from '../../noise/test/support/netns-lab';

// A real wireguard-go behind a real Linux NAT (nftables in a router namespace) with two reflectors
// on two public addresses: the reflectors must report the router's public address and the mapped
// port, and comparing them must classify the NAT (NATLAB.md: `masquerade` keeps one mapping for all
// destinations, `masquerade random` picks a new port per destination).
//
//   dev (10.1.0.2) ── router (10.1.0.1 | 192.0.2.1, NAT) ── wan (192.0.2.10, 192.0.2.11: reflectors)

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const pid = process.pid;
const device = generateKeyPair();
const reflectorKeys = [generateKeyPair(), generateKeyPair()];
const reflectorHosts = ['192.0.2.10', '192.0.2.11'];
const aliases = {
  '@trellis/noise': join(__dirname, '../../noise/src/index.ts'),
  '@trellis/reflector': join(__dirname, '../src/index.ts'),
};

describe.each([
  { nat: 'masquerade', expected: 'endpoint-independent', tag: 'eim' },
  { nat: 'masquerade random', expected: 'endpoint-dependent', tag: 'sym' },
] as const)('reflectors behind a "$nat" router', ({ nat, expected, tag }) => {
  let lab: NetnsLab;
  let router: string;
  let devNs: string;
  const reflectors: NodeChild[] = [];
  const ifname = `t${tag}${pid}`;

  beforeAll(async () => {
    lab = await NetnsLab.create(`nat${tag}`);
    const wan = lab.namespace;
    router = await lab.addNamespace('r');
    devNs = await lab.addNamespace('d');
    await lab.link(
      { ns: devNs, name: 'lan0', cidr: '10.1.0.2/24' },
      { ns: router, name: 'br0', cidr: '10.1.0.1/24' },
    );
    await lab.link(
      { ns: router, name: 'wan0', cidr: '192.0.2.1/24' },
      { ns: wan, name: 'up0', cidr: '192.0.2.10/24' },
    );
    await lab.exec('ip', ['addr', 'add', '192.0.2.11/24', 'dev', 'up0'], wan);
    await lab.exec('ip', ['route', 'add', 'default', 'via', '10.1.0.1'], devNs);
    await lab.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1'], router);
    await lab.exec(
      'nft',
      [
        `add table ip nat; add chain ip nat post { type nat hook postrouting priority srcnat; }; add rule ip nat post oifname "wan0" ${nat}`,
      ],
      router,
    );
    for (const [i, host] of reflectorHosts.entries()) {
      const child = await lab.startNode(
        join(__dirname, 'support/reflector-child.ts'),
        ['51900', b64(reflectorKeys[i]!.privateKey), b64(device.publicKey), host],
        aliases,
        wan,
      );
      await child.next((l) => l.event === 'listening');
      reflectors.push(child);
    }
    await lab.startWireguard(ifname, devNs);
    await lab.configureWireguard(
      ifname,
      {
        privateKey: b64(device.privateKey),
        listenPort: 51820,
        peers: reflectorHosts.map((host, i) => ({
          publicKey: b64(reflectorKeys[i]!.publicKey),
          endpoint: `${host}:51900`,
          keepalive: 1,
        })),
      },
      devNs,
    );
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it(`sees the router's public address and classifies the mapping as ${expected}`, async () => {
    const seen: Observation[] = [];
    for (const reflector of reflectors) {
      const line = await reflector.next((l) => l.event === 'observed');
      const { event: _event, ...observation } = line;
      seen.push(observation as unknown as Observation);
    }
    for (const observation of seen) {
      expect(observation).toMatchObject({ publicKey: b64(device.publicKey), address: '192.0.2.1' });
    }
    expect(classifyNatMapping(seen[0], seen[1])).toBe(expected);
    // `masquerade` keeps the inside port when it is free; `random` maps it elsewhere.
    if (expected === 'endpoint-independent') expect(seen[0]!.port).toBe(51820);
  }, 60_000);
});
