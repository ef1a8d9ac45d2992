import type { PathReportMessage, PathWantMessage, RelayPathMessage } from '@trellis/proto';
import pino from 'pino';
import { PathDriver, type PathDriverDeps } from '../src/agent/path-driver';
import { SerialQueue } from '../src/agent/serial-queue';
import { waitFor } from '../src/util/wait';
import type { WireGuardBackend } from '../src/wireguard/backend';
import type { WgConfigUpdate, WgDeviceState } from '../src/wireguard/types';

const SELF = `${'A'.repeat(43)}=`;
const PEER = `${'B'.repeat(43)}=`;

/** A WireGuard that records updates and reports what the test says about handshakes. */
class FakeBackend implements WireGuardBackend {
  readonly kind = 'userspace' as const;
  readonly interfaceName = 'fake0';
  readonly applied: WgConfigUpdate[] = [];
  state: WgDeviceState = { privateKey: null, listenPort: 51820, peers: [] };
  async start(): Promise<void> {}
  async getState(): Promise<WgDeviceState> {
    return this.state;
  }
  async apply(update: WgConfigUpdate): Promise<void> {
    this.applied.push(update);
  }
  async stop(): Promise<void> {}
  onRecreated(): void {}
}

/** WireGuard's row for PEER: its endpoint, last handshake (seconds) and byte counters. */
function peerRow(
  backend: FakeBackend,
  endpoint: string,
  lastHandshakeSec: number,
  txBytes: number,
  rxBytes: number,
): void {
  const persistentKeepalive = lastHandshakeSec > 0 ? 25 : 0;
  const row = { publicKey: PEER, endpoint, allowedIps: ['100.64.0.2/32'], persistentKeepalive };
  backend.state = { ...backend.state, peers: [{ ...row, lastHandshakeSec, rxBytes, txBytes }] };
}

/** WireGuard reports a handshake with PEER (stamped a second ahead: fresh) through `endpoint`. */
function handshakeVia(backend: FakeBackend, endpoint: string): void {
  peerRow(backend, endpoint, Math.ceil(Date.now() / 1000) + 1, 148, 92);
}

/** WireGuard counts bytes for PEER (no handshake): an initiation for a packet the host sent it. */
function trafficTo(backend: FakeBackend, endpoint: string, txBytes: number): void {
  peerRow(backend, endpoint, 0, txBytes, 0);
}

/** A driver for one peer (PEER) on a fake backend, reports collected in `sent`. */
function setup(extra: Partial<PathDriverDeps> = {}) {
  const backend = new FakeBackend();
  const queue = new SerialQueue();
  const sent: Array<PathReportMessage | PathWantMessage> = [];
  const driver = new PathDriver({
    selfPublicKey: SELF,
    backend,
    run: (job) => queue.run(job),
    allowedIpsOf: (key) => (key === PEER ? ['100.64.0.2/32'] : null),
    meshUp: () => true,
    send: (m) => sent.push(m),
    logger: pino({ level: 'silent' }),
    ...extra,
  });
  return { backend, queue, sent, driver };
}

describe('PathDriver (PathManager effects on a WireGuard backend)', () => {
  it('parks a new peer without keepalive, wants a path on its traffic, re-adds, reports direct', async () => {
    const { backend, queue, sent, driver } = setup();
    try {
      trafficTo(backend, '192.0.2.12:51820', 0);
      await queue.run(() =>
        driver.setPeersInQueue([
          {
            peerId: 'peer-b',
            publicKey: PEER,
            candidates: [{ endpoint: '192.0.2.12:51820', kind: 'reflexive', priority: 1 }],
          },
        ]),
      );
      // Dormant: WireGuard gets the endpoint, so its own initiation goes out for packets, no keepalive.
      expect(backend.applied).toEqual([
        { peers: [{ publicKey: PEER, endpoint: '192.0.2.12:51820', persistentKeepalive: 0 }] },
      ]);
      expect(driver.nextWakeAt! - Date.now()).toBeLessThanOrEqual(250);
      // One poll reads the counters as they are (a baseline: earlier bytes are not demand).
      await new Promise((r) => setTimeout(r, 300));
      expect(sent).toEqual([]);
      // The host sends the peer a packet: WireGuard's initiation grows tx; the next poll (≤ 250 ms) sees it.
      const demandAt = Date.now();
      trafficTo(backend, '192.0.2.12:51820', 148);
      await waitFor(() => sent.length > 0, 2000);
      expect(Date.now() - demandAt).toBeLessThan(1000);
      expect(sent).toEqual([{ type: 'want-path', peerId: 'peer-b' }]);
      // A re-add (remove + add with endpoint, allowed IPs, keepalive) makes WireGuard initiate at once.
      expect(backend.applied[1]).toEqual({
        peers: [
          { publicKey: PEER, remove: true },
          {
            publicKey: PEER,
            endpoint: '192.0.2.12:51820',
            persistentKeepalive: 25,
            allowedIps: ['100.64.0.2/32'],
          },
        ],
      });
      // WireGuard completes a handshake; the driver's next poll sees it.
      handshakeVia(backend, '192.0.2.12:51820');
      const deadline = Date.now() + 10_000;
      while (sent.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(sent[1]).toMatchObject({ type: 'path', peerId: 'peer-b', result: 'direct', kind: 'reflexive' });
      expect(driver.status()[0]).toMatchObject({ path: 'direct-internet', endpoint: '192.0.2.12:51820' });
    } finally {
      driver.stop();
    }
  });

  it('points WireGuard at a relay (UDP, or the TCP link), reports it, ignores unknown peers, closes links', async () => {
    const links: Array<{ closed: boolean; start(): Promise<string>; close(): void }> = [];
    const { backend, queue, sent, driver } = setup({
      openTcpRelay: () => {
        const link = {
          closed: false,
          start: async () => `127.0.0.1:${5555 + links.length - 1}`,
          close: () => {
            link.closed = true;
          },
        };
        links.push(link);
        return link;
      },
    });
    const relay: RelayPathMessage = {
      type: 'relay',
      peerId: 'peer-b',
      peerPublicKey: PEER,
      allocationId: '3b2c1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f',
      relayId: '9d8c7b6a-5f4e-4d3c-8b2a-1a0b9c8d7e6f',
      relayName: 'relay-fra',
      endpoint: '192.0.2.99:40001',
    };
    const lastEndpoint = () => backend.applied.at(-1)?.peers.at(-1)?.endpoint;
    try {
      await queue.run(() => driver.setPeersInQueue([{ peerId: 'peer-b', publicKey: PEER, candidates: [] }]));
      await driver.relay(relay);
      expect(backend.applied.at(-1)!.peers[0]).toEqual({ publicKey: PEER, remove: true });
      expect(lastEndpoint()).toBe('192.0.2.99:40001');
      const applied = backend.applied.length;
      await driver.relay({ ...relay, peerId: 'someone-else' });
      await driver.relay({ ...relay, peerPublicKey: SELF });
      expect(backend.applied.length).toBe(applied);

      // The same peer's relay moves to TCP: WireGuard goes to the loopback link.
      const tcp = { url: 'wss://relay.example:443', fingerprint: `${'AB:'.repeat(31)}AB` };
      const overTcp = { ...relay, allocationId: '4c3d2b1a-0000-4000-8000-000000000001', tcp };
      await driver.relay(overTcp);
      expect(links).toHaveLength(1);
      expect(lastEndpoint()).toBe('127.0.0.1:5555');
      await driver.relay(overTcp); // repeated: same link, no re-add
      expect(links).toHaveLength(1);
      handshakeVia(backend, '127.0.0.1:5555');
      await waitFor(() => sent.length > 0, 10_000, 10);
      // The broker hears of the allocation's address, not our loopback port.
      expect(sent[0]).toMatchObject({ result: 'relay', kind: 'relay', endpoint: '192.0.2.99:40001' });
      expect(driver.status()[0]).toMatchObject({ path: 'relay', relayName: 'relay-fra' });
      await driver.relayRelease({
        type: 'relay-release',
        peerId: 'peer-b',
        allocationId: overTcp.allocationId,
      });
      expect(links[0]!.closed).toBe(true);
    } finally {
      driver.stop();
    }
  });

  it('when the control connection comes up, wants each peer on a confirmed relay again, saying so', async () => {
    const { backend, queue, sent, driver } = setup();
    const relay: RelayPathMessage = {
      type: 'relay',
      peerId: 'peer-b',
      peerPublicKey: PEER,
      allocationId: '3b2c1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f',
      relayId: '9d8c7b6a-5f4e-4d3c-8b2a-1a0b9c8d7e6f',
      relayName: 'relay-fra',
      endpoint: '192.0.2.99:40001',
    };
    try {
      await queue.run(() => driver.setPeersInQueue([{ peerId: 'peer-b', publicKey: PEER, candidates: [] }]));
      // Not on a relay yet: nothing to announce.
      await driver.controlConnected();
      expect(sent).toEqual([]);
      await driver.relay(relay);
      await driver.controlConnected(); // offered, not confirmed: not a relay the broker could adopt
      expect(sent).toEqual([]);
      handshakeVia(backend, '192.0.2.99:40001');
      await waitFor(() => sent.length > 0, 10_000, 10);
      expect(sent).toEqual([expect.objectContaining({ type: 'path', result: 'relay' })]);
      // The broker restarted: the reconnected agent takes the pair up again with its relay.
      await driver.controlConnected();
      expect(sent.slice(1)).toEqual([{ type: 'want-path', peerId: 'peer-b', relayed: true }]);
    } finally {
      driver.stop();
    }
  });

  it('re-adds the peer at a TCP link that reconnected (once), not on its first open nor once closed', async () => {
    const reconnected: Array<() => void> = [];
    let closed = false;
    const { backend, queue, sent, driver } = setup({
      openTcpRelay: (_msg, onReconnected) => {
        reconnected.push(onReconnected);
        return {
          start: async () => '127.0.0.1:5555',
          close: () => {
            closed = true;
          },
        };
      },
    });
    const tcp = { url: 'wss://relay.example:443', fingerprint: `${'AB:'.repeat(31)}AB` };
    const relay: RelayPathMessage = {
      type: 'relay',
      peerId: 'peer-b',
      peerPublicKey: PEER,
      allocationId: '4c3d2b1a-0000-4000-8000-000000000001',
      relayId: '9d8c7b6a-5f4e-4d3c-8b2a-1a0b9c8d7e6f',
      relayName: 'relay-fra',
      endpoint: '192.0.2.99:40001',
      tcp,
    };
    const readds = () =>
      backend.applied.filter((u) => u.peers[0]?.publicKey === PEER && u.peers[0].remove === true);
    const settle = () => queue.run(async () => {});
    try {
      await queue.run(() => driver.setPeersInQueue([{ peerId: 'peer-b', publicKey: PEER, candidates: [] }]));
      await driver.relay(relay);
      // WireGuard answers through the link: the relay path is confirmed.
      handshakeVia(backend, '127.0.0.1:5555');
      await waitFor(() => sent.length === 1, 10_000, 10);
      // The path's start re-added once; the link's first open is no reconnect and adds nothing.
      expect(reconnected).toHaveLength(1);
      expect(readds()).toHaveLength(1);

      // The relay restarted and the link connected again: one fresh re-add at the link, so the
      // relay binds the new connection by the handshake; the path is confirmed again.
      reconnected[0]!();
      await settle();
      expect(readds()).toHaveLength(2);
      expect(readds().at(-1)!.peers[1]).toMatchObject({ publicKey: PEER, endpoint: '127.0.0.1:5555' });
      await waitFor(() => sent.length === 2, 10_000, 10);
      expect(sent[1]).toMatchObject({ result: 'relay', endpoint: '192.0.2.99:40001' });
      expect(readds()).toHaveLength(2);

      // Released: the link is closed, and a late reconnect from it changes nothing.
      await driver.relayRelease({
        type: 'relay-release',
        peerId: 'peer-b',
        allocationId: relay.allocationId,
      });
      expect(closed).toBe(true);
      const applied = backend.applied.length;
      reconnected[0]!();
      await settle();
      expect(backend.applied).toHaveLength(applied);
    } finally {
      driver.stop();
    }
  });

  it('a status read shows the path logic where WireGuard is now: a peer that moved to the relay is not direct', async () => {
    const { backend, queue, sent, driver } = setup();
    const peer = {
      peerId: 'peer-b',
      publicKey: PEER,
      candidates: [{ endpoint: '192.0.2.12:51820', kind: 'reflexive' as const, priority: 1 }],
    };
    try {
      driver.setRelayHosts(['192.0.2.99']);
      await queue.run(() => driver.setPeersInQueue([peer]));
      handshakeVia(backend, '192.0.2.12:51820');
      await waitFor(() => sent.length === 1, 10_000, 10);
      expect(driver.status()[0]).toMatchObject({ path: 'direct-internet' });
      // The peer gave up on direct and initiated through a relay allocation: WireGuard roamed there.
      // The driver's next look is up to 10 s away; the status read shows it the state at once.
      backend.state = {
        ...backend.state,
        peers: backend.state.peers.map((p) => ({
          ...p,
          endpoint: '192.0.2.99:40001',
          lastHandshakeSec: p.lastHandshakeSec + 1,
        })),
      };
      expect(driver.status()[0]).toMatchObject({ path: 'direct-internet' });
      await queue.run(async () => driver.observeInQueue(await backend.getState()));
      expect(driver.status()[0]).toMatchObject({ path: 'none', endpoint: '192.0.2.99:40001' });
      expect(sent.map((m) => (m.type === 'path' ? m.result : m.type))).toEqual(['direct']);
    } finally {
      driver.stop();
    }
  });
});
