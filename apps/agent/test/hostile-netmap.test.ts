import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import pino from 'pino';
import { ControlClient } from '../src/control/control-client';
import type { Netmap } from '../src/control/netmap-tracker';
import { createBrokerAgent } from '../src/trust/broker-trust';
import { waitFor } from '../src/util/wait';
import { BrokerDouble, type DoubleDevice } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

const cert = makeSelfSignedCert();
type Frame = Record<string, unknown>;
type Peer = Record<string, unknown>;

const peersOf = (f: Frame): Peer[] => (f.type === 'netmap' ? (f.peers as Peer[]) : []);
const selfOf = (f: Frame): Peer | undefined => (f.type === 'netmap' ? (f.self as Peer) : undefined);

/** What a hostile broker might put in a snapshot, and the field the refusal must name. */
const hostileSnapshots: Array<[string, (f: Frame) => void, RegExp]> = [
  ['allowed IPs of the whole internet', (f) => (peersOf(f)[0]!.allowedIps = ['0.0.0.0/0']), /allowedIps/],
  ['allowed IPs on the LAN', (f) => (peersOf(f)[0]!.allowedIps = ['192.168.1.0/24']), /allowedIps/],
  [
    'a UAPI line in an allowed IP',
    (f) => (peersOf(f)[0]!.allowedIps = ['100.64.0.2/32\npublic_key=00']),
    /allowedIps/,
  ],
  ['an overlay prefix of everything', (f) => (selfOf(f)!.overlayPrefix = '0.0.0.0/0'), /overlayPrefix/],
  ['a self address outside the overlay', (f) => (selfOf(f)!.address = '10.0.0.1'), /self\.address/],
  ['a peer address outside the overlay', (f) => (peersOf(f)[0]!.address = '8.8.8.8'), /address/],
  ['a newline in an endpoint', (f) => (peersOf(f)[0]!.endpoints = ['10.0.0.2:51820\nx']), /endpoints/],
  ['a control character in a DNS name', (f) => (peersOf(f)[0]!.dnsName = 'dev2\u0007.acme.test'), /dnsName/],
  ['a newline in a name', (f) => (peersOf(f)[0]!.name = 'dev2\nx'), /name/],
  ['a key that is not a key', (f) => (peersOf(f)[0]!.publicKey = 'AAAA\nBBBB'), /publicKey/],
  [
    'a relay host with a line break',
    (f) => (selfOf(f)!.relays = [{ id: randomUUID(), name: 'r1', address: '10.0.0.9\nendpoint=1.2.3.4:1' }]),
    /relays/,
  ],
];

describe('the agent refuses hostile netmaps and deltas', () => {
  let broker: BrokerDouble;
  let port: number;
  const clients: ControlClient[] = [];
  const keys = generateKeyPair();
  let me: DoubleDevice;

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    port = await broker.listen(0);
    me = { id: randomUUID(), name: 'dev1', publicKey: keys.publicKey, address: '100.64.0.1', endpoints: [] };
    broker.devices.set(me.id, me);
    const peer = generateKeyPair();
    const other = { id: randomUUID(), name: 'dev2', publicKey: peer.publicKey, address: '100.64.0.2' };
    broker.devices.set(other.id, { ...other, endpoints: ['10.0.0.2:51820'] });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.stop();
    await broker.close();
  });

  function start(): { client: ControlClient; netmaps: Netmap[]; warnings: string[] } {
    const netmaps: Netmap[] = [];
    const warnings: string[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => warnings.push(JSON.parse(line).reason as string) },
    );
    const client = new ControlClient({
      brokerUrls: [`https://127.0.0.1:${port}`],
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: me.id,
      keyPair: keys,
      brokerPublicKey: broker.keys.publicKey,
      handlers: {
        onNetmap: (n) => netmaps.push(n),
        onConnected: () => {},
        onDisconnected: () => {},
        onDeviceRemoved: () => {},
      },
      logger,
      backoff: { initialMs: 20, maxMs: 200, random: () => 0.5 },
    });
    clients.push(client);
    client.start();
    return { client, netmaps, warnings };
  }

  it.each(hostileSnapshots)(
    'a snapshot with %s: nothing applied, the field named',
    async (_, tamper, field) => {
      broker.tamper = (f) => {
        if (f.type === 'netmap') tamper(f);
      };
      const { client, netmaps, warnings } = start();
      await waitFor(() => warnings.length > 0, 10_000, 10);
      expect(netmaps).toEqual([]);
      expect(client.connected).toBe(false);
      expect(warnings[0]).toMatch(/^broker sent a malformed control message: "netmap" refused: /);
      expect(warnings[0]).toMatch(field);
    },
  );

  it('a hostile delta after a good snapshot: refused, the snapshot stays what was applied', async () => {
    const { netmaps, warnings } = start();
    await waitFor(() => netmaps.length === 1, 10_000, 10);
    broker.tamper = (f) => {
      if (f.type !== 'delta') return;
      (f.upsert as Peer[])[0]!.allowedIps = ['100.64.0.3/32', '0.0.0.0/1'];
    };
    const [peer] = [...broker.devices.values()].filter((d) => d.id !== me.id);
    broker.sendDelta(me.id, { upsert: [broker.peerOf(peer!)], remove: [] });
    await waitFor(() => warnings.length > 0, 10_000, 10);
    expect(warnings[0]).toMatch(
      /"delta" refused: upsert\.0\.allowedIps\.1: must be a prefix inside the overlay/,
    );
    // The reconnection's snapshot is refused as well only if tampered; deltas only here.
    await waitFor(() => netmaps.length === 2, 10_000, 10);
    expect(netmaps.every((n) => n.peers.every((p) => p.allowedIps.every((a) => a.startsWith('100.6'))))).toBe(
      true,
    );
  });
});
