import { type GatewayPolicy, NftablesBackend, NftablesGatewayBackend } from '../src';
import { type Line, Netns, realTestBlocker, SocketsChild, veth } from './support/netns';

// Real packets through a gateway: mesh client -> gateway -> LAN host, joined by plain veth pairs
// (the gateway's mesh end named like a WireGuard interface) with IP forwarding on in the gateway.
// The LAN host holds two addresses: .100 is registered as a virtual device, .200 is not. The client
// routes the virtual device's mesh address to the gateway (the agent's allowed IPs would).

const blocker = realTestBlocker();
const GW_MESH = '100.64.0.1';
const CLIENT = '100.64.0.2';
const VD_MESH = '100.64.7.1';
const GW_LAN = '192.168.77.1';
const LAN_HOST = '192.168.77.100';
const LAN_OTHER = '192.168.77.200';
const MESH_IF = 'wg-g0';
const LAN_IF = 'lan0';

const policy: GatewayPolicy = {
  meshInterface: MESH_IF,
  selfAddress: GW_MESH,
  lan: { interfaceName: LAN_IF, routes: ['192.168.77.0/24'], masquerade: true },
  virtualDevices: [{ meshAddress: VD_MESH, lanAddress: LAN_HOST }],
  access: [
    { peer: CLIENT, destination: '192.168.77.0/24', allow: [{ proto: 'tcp', ports: [[8080, 8080]] }] },
    { peer: CLIENT, destination: VD_MESH, allow: [{ proto: 'tcp', ports: [[8081, 8081]] }] },
  ],
};

if (blocker) {
  describe('NftablesGatewayBackend with real packets', () => {
    it.skip(`skipped: ${blocker} (needs root, ip and nft)`, () => undefined);
  });
} else {
  describe('NftablesGatewayBackend with real packets', () => {
    const namespaces: Netns[] = [];
    let client: Netns;
    let gw: Netns;
    let lan: Netns;
    let onClient: SocketsChild;
    let onLan: SocketsChild;
    let backend: NftablesGatewayBackend;

    beforeAll(async () => {
      for (const name of ['gwc', 'gwg', 'gwl'])
        namespaces.push(await Netns.create(`trl-${name}-${process.pid}`));
      [client, gw, lan] = namespaces as [Netns, Netns, Netns];
      await veth(
        { ns: client, name: 'eth0', cidrs: [`${CLIENT}/10`] },
        { ns: gw, name: MESH_IF, cidrs: [`${GW_MESH}/10`] },
      );
      await veth(
        { ns: gw, name: LAN_IF, cidrs: [`${GW_LAN}/24`] },
        { ns: lan, name: 'eth0', cidrs: [`${LAN_HOST}/24`, `${LAN_OTHER}/24`] },
      );
      await gw.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      // What the agent (allowed IPs) and the LAN router (a static route) would provide.
      await client.exec('ip', ['route', 'add', '192.168.77.0/24', 'via', GW_MESH]);
      await client.exec('ip', ['route', 'add', `${VD_MESH}/32`, 'via', GW_MESH]);
      await lan.exec('ip', ['route', 'add', '100.64.0.0/10', 'via', GW_LAN]);
      onClient = new SocketsChild(client);
      onLan = new SocketsChild(lan);
      await onClient.next((l) => l.event === 'ready');
      await onLan.next((l) => l.event === 'ready');
      for (const port of [8080, 8081, 8082]) {
        await onLan.next(
          (l) => l.event === 'listening',
          onLan.send({ cmd: 'listen', port, host: '0.0.0.0' }),
        );
      }
      await onClient.next(
        (l) => l.event === 'listening',
        onClient.send({ cmd: 'listen', port: 9000, host: CLIENT }),
      );
      // The device's inbound table is there too (nobody may open anything on the gateway itself):
      // the two tables must not get in each other's way.
      await new NftablesBackend({ run: gw.run }).apply({
        interfaceName: MESH_IF,
        selfAddress: GW_MESH,
        peers: [],
      });
      backend = new NftablesGatewayBackend({ run: gw.run });
    }, 30_000);

    afterAll(async () => {
      onClient?.stop();
      onLan?.stop();
      for (const ns of namespaces) await ns.destroy();
    });

    /** 'connected' or 'timeout' (5 s when it should open on a loaded machine, 600 ms when not). */
    async function connect(
      from: SocketsChild,
      tag: string,
      host: string,
      port: number,
      expectOpen: boolean,
      localAddress?: string,
    ): Promise<unknown> {
      const timeoutMs = expectOpen ? 5000 : 600;
      const i = from.send({
        cmd: 'connect',
        tag,
        host,
        port,
        timeoutMs,
        ...(localAddress ? { localAddress } : {}),
      });
      return (await from.next((l) => l.tag === tag && (l.event === 'connected' || l.event === 'timeout'), i))
        .event;
    }

    const acceptedOn = (child: SocketsChild, port: number, from: number): Promise<Line> =>
      child.next((l) => l.event === 'accepted' && l.port === port, from);

    it('forwards a routed destination on the allowed port, masqueraded to the gateway LAN address', async () => {
      expect(await backend.apply(policy)).toEqual({ changed: true, cut: { cut: 0 } });
      const from = onLan.lines.length;
      expect(await connect(onClient, 'routed', LAN_HOST, 8080, true)).toBe('connected');
      expect((await acceptedOn(onLan, 8080, from)).remote).toBe(GW_LAN);
    }, 30_000);

    it('drops a port the gateway policy does not allow, and the virtual device port on the routed address', async () => {
      expect(await connect(onClient, 'routed-forbidden', LAN_HOST, 8082, false)).toBe('timeout');
      expect(await connect(onClient, 'routed-vd-port', LAN_HOST, 8081, false)).toBe('timeout');
    }, 30_000);

    it("DNATs the virtual device's mesh address to the LAN host, on its own allowed port only", async () => {
      const from = onLan.lines.length;
      expect(await connect(onClient, 'vd', VD_MESH, 8081, true)).toBe('connected');
      expect((await acceptedOn(onLan, 8081, from)).remote).toBe(GW_LAN);
      expect(await connect(onClient, 'vd-forbidden', VD_MESH, 8080, false)).toBe('timeout');
    }, 30_000);

    it('lets the registered LAN host into the mesh under its own mesh address, and no other LAN host', async () => {
      const from = onClient.lines.length;
      expect(await connect(onLan, 'lan-registered', CLIENT, 9000, true, LAN_HOST)).toBe('connected');
      expect((await acceptedOn(onClient, 9000, from)).remote).toBe(VD_MESH);
      expect(await connect(onLan, 'lan-unregistered', CLIENT, 9000, false, LAN_OTHER)).toBe('timeout');
    }, 30_000);

    it('taking a port away cuts its open forwarded connection, and leaves a still-allowed one alone', async () => {
      const echoes = async (tag: string, data: string, expectEcho: boolean): Promise<boolean> => {
        const i = onClient.send({ cmd: 'send', tag, data });
        const wait = onClient.next(
          (l) => l.event === 'data' && l.tag === tag && l.data === data,
          i,
          expectEcho ? 5000 : 1500,
        );
        return wait.then(
          () => true,
          () => false,
        );
      };
      expect(await connect(onClient, 'cut-me', LAN_HOST, 8080, true)).toBe('connected');
      expect(await connect(onClient, 'keep-me', VD_MESH, 8081, true)).toBe('connected');
      expect(await echoes('cut-me', 'one', true)).toBe(true);
      expect(await echoes('keep-me', 'one', true)).toBe(true);
      const narrower: GatewayPolicy = {
        ...policy,
        access: policy.access.filter((a) => a.destination === VD_MESH),
      };
      const result = await backend.apply(narrower);
      expect(result.changed).toBe(true);
      expect(result.cut?.error).toBeUndefined();
      expect(result.cut?.cut).toBeGreaterThanOrEqual(1);
      expect(await echoes('cut-me', 'two', false)).toBe(false);
      expect(await echoes('keep-me', 'two', true)).toBe(true);
      await backend.apply(policy);
    }, 30_000);

    it('remove takes only the gateway table away: what it dropped gets through, inbound stays', async () => {
      await backend.remove();
      const ruleset = await gw.exec('nft', ['list', 'tables']);
      expect(ruleset).toContain('table inet trellis');
      expect(ruleset).not.toContain('trellis_gw');
      expect(await connect(onLan, 'lan-after', CLIENT, 9000, true, LAN_OTHER)).toBe('connected');
      expect(await connect(onClient, 'routed-after', LAN_HOST, 8082, true)).toBe('connected');
    }, 30_000);
  });
}
