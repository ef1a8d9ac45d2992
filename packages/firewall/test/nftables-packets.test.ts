import { type InboundPolicy, NftablesBackend } from '../src';
import { Netns, realTestBlocker, SocketsChild, veth } from './support/netns';

// Real packets through the nftables backend: two namespaces joined by a veth pair, the device's end
// named like a WireGuard interface. The peer namespace holds two overlay addresses: .2 is a peer
// with access, .3 one without.

const blocker = realTestBlocker();
const DEVICE = '100.64.0.1';
const PEER = '100.64.0.2';
const STRANGER = '100.64.0.3';
const IFACE = 'wg-t0';

const policy = (tcpPorts: Array<[number, number]>, icmp: boolean): InboundPolicy => ({
  interfaceName: IFACE,
  selfAddress: DEVICE,
  peers: [
    {
      address: PEER,
      allow: [{ proto: 'tcp', ports: tcpPorts }, ...(icmp ? [{ proto: 'icmp' as const }] : [])],
    },
  ],
});

const ended = (tag: string) => (l: Record<string, unknown>) =>
  l.tag === tag && (l.event === 'error' || l.event === 'closed');

if (blocker) {
  describe('NftablesBackend with real packets', () => {
    it.skip(`skipped: ${blocker} (needs root, ip and nft)`, () => undefined);
  });
} else {
  describe('NftablesBackend with real packets', () => {
    const namespaces: Netns[] = [];
    let device: Netns;
    let peer: Netns;
    let onDevice: SocketsChild;
    let onPeer: SocketsChild;
    let backend: NftablesBackend;

    beforeAll(async () => {
      device = await Netns.create(`trl-fwd-${process.pid}`);
      namespaces.push(device);
      peer = await Netns.create(`trl-fwp-${process.pid}`);
      namespaces.push(peer);
      await veth(
        { ns: device, name: IFACE, cidrs: [`${DEVICE}/10`] },
        { ns: peer, name: 'eth0', cidrs: [`${PEER}/10`, `${STRANGER}/10`] },
      );
      onDevice = new SocketsChild(device);
      onPeer = new SocketsChild(peer);
      await onDevice.next((l) => l.event === 'ready');
      await onPeer.next((l) => l.event === 'ready');
      for (const port of [8022, 8023, 8024]) {
        await onDevice.next(
          (l) => l.event === 'listening',
          onDevice.send({ cmd: 'listen', port, host: DEVICE }),
        );
      }
      await onPeer.next(
        (l) => l.event === 'listening',
        onPeer.send({ cmd: 'listen', port: 9000, host: PEER }),
      );
      backend = new NftablesBackend({ run: device.run });
    }, 30_000);

    afterAll(async () => {
      onDevice?.stop();
      onPeer?.stop();
      for (const ns of namespaces) await ns.destroy();
    });

    /**
     * Opens a connection from the peer namespace: 'connected' or 'timeout'. A connection that should
     * open gets 5 s (a loaded machine); one that should not is given up after 600 ms (veth, no RTT).
     */
    async function connect(tag: string, port: number, expectOpen: boolean, from = PEER): Promise<unknown> {
      const timeoutMs = expectOpen ? 5000 : 600;
      const i = onPeer.send({ cmd: 'connect', tag, host: DEVICE, port, localAddress: from, timeoutMs });
      const line = await onPeer.next(
        (l) => l.tag === tag && (l.event === 'connected' || l.event === 'timeout'),
        i,
      );
      return line.event;
    }

    /** Sends on a socket of `child` and waits for the echo (or fails on the child's timeout). */
    async function echo(child: SocketsChild, tag: string, data: string): Promise<void> {
      const i = child.send({ cmd: 'send', tag, data });
      await child.next((l) => l.event === 'data' && l.tag === tag && l.data === data, i, 5000);
    }

    async function acceptedTag(port: number, from: number): Promise<string> {
      return String((await onDevice.next((l) => l.event === 'accepted' && l.port === port, from)).tag);
    }

    it('lets allowed flows in, drops the rest, counts both', async () => {
      expect(
        await backend.apply(
          policy(
            [
              [8022, 8022],
              [8024, 8024],
            ],
            true,
          ),
        ),
      ).toMatchObject({ mode: 'full' });
      expect(await connect('ok', 8022, true)).toBe('connected');
      await echo(onPeer, 'ok', 'hello');
      expect(await connect('forbidden-port', 8023, false)).toBe('timeout');
      expect(await connect('stranger', 8022, false, STRANGER)).toBe('timeout');
      await peer.exec('ping', ['-c', '1', '-W', '2', DEVICE]);
      await expect(peer.exec('ping', ['-c', '1', '-W', '0.5', '-I', STRANGER, DEVICE])).rejects.toThrow();
      const c = await backend.counters();
      expect(c.accepted!.packets).toBeGreaterThan(0);
      expect(c.dropped.packets).toBeGreaterThan(0);
    }, 30_000);

    it('a change cuts the flows it forbids at once, keeps allowed ones and those the device started', async () => {
      expect(await connect('keep', 8022, true)).toBe('connected');
      let from = onDevice.lines.length;
      expect(await connect('cut-a', 8024, true)).toBe('connected');
      await echo(onPeer, 'cut-a', 'a');
      await acceptedTag(8024, from);
      from = onDevice.lines.length;
      expect(await connect('cut-b', 8024, true)).toBe('connected');
      await echo(onPeer, 'cut-b', 'b');
      const deviceSideB = await acceptedTag(8024, from);
      // A flow the device started toward the peer, whose access the change does not govern.
      const i = onDevice.send({ cmd: 'connect', tag: 'own', host: PEER, port: 9000, timeoutMs: 5000 });
      await onDevice.next((l) => l.tag === 'own' && l.event === 'connected', i);
      await echo(onDevice, 'own', 'mine');

      const result = await backend.apply(policy([[8022, 8022]], false));
      expect(result).toMatchObject({ changed: true, mode: 'incremental' });
      expect(result.cutError).toBeUndefined();
      expect(result.cut).toBeGreaterThanOrEqual(2);

      // The peer speaks first on cut-a: its packet is answered with a reset.
      let at = onPeer.send({ cmd: 'send', tag: 'cut-a', data: 'after' });
      expect(await onPeer.next(ended('cut-a'), at)).toMatchObject({ tag: 'cut-a' });
      // The device speaks first on cut-b: the output chain resets the device's own socket...
      at = onDevice.send({ cmd: 'send', tag: deviceSideB, data: 'push' });
      await onDevice.next(ended(deviceSideB), at);
      // ...and the peer's next packet on it is reset too.
      at = onPeer.send({ cmd: 'send', tag: 'cut-b', data: 'after' });
      await onPeer.next(ended('cut-b'), at);

      await echo(onPeer, 'keep', 'still here');
      await echo(onDevice, 'own', 'mine, still');
      expect(await connect('cut-again', 8024, false)).toBe('timeout');
      expect((await backend.counters()).rejected!.packets).toBeGreaterThan(0);
    }, 30_000);

    it('remove takes the rules away: what was forbidden connects again', async () => {
      await backend.remove();
      expect(await device.exec('nft', ['list', 'ruleset'])).toBe('');
      expect(await connect('open', 8023, true)).toBe('connected');
    }, 30_000);
  });
}
