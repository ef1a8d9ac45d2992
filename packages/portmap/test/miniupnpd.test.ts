import { join } from 'node:path';
import type { MappingProtocol, PortMappedCandidate, PortMapping } from '@trellis/portmap';
import { type JsonLine, type NodeChild, waitFor } from '../../noise/test/support/netns-lab';
import { INTERNET_IP, LAN_IP, LAN2_IP, MiniupnpdLab, WAN_IP } from './support/miniupnpd-lab';

// The client against Debian's real miniupnpd in a lab router. For each protocol: a LAN host maps a
// UDP port; a datagram from the internet host to the mapped external endpoint must reach the LAN
// socket; after stop the mapping is gone and a datagram to it ends at the router. Every datagram is
// sent from a fresh source port, so an earlier conntrack entry can never decide where it goes.

const aliases = { '@trellis/portmap': join(__dirname, '../src/index.ts') };
const childScript = join(__dirname, 'support/portmap-child.ts');

describe('PortMappingClient against miniupnpd', () => {
  let lab: MiniupnpdLab;
  let sender: NodeChild;
  let sent = 0;

  beforeAll(async () => {
    lab = await MiniupnpdLab.create();
    sender = await lab.lab.startNode(join(__dirname, 'support/udp-sender-child.ts'), [], {}, lab.internet);
    await sender.next((l) => l.event === 'ready');
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  async function send(port: number, data: string): Promise<void> {
    const from = sender.lines.length;
    sender.send({ cmd: 'send', host: WAN_IP, port, data });
    const line = await sender.next((l) => l.event === 'sent' && l.data === data, from);
    expect(line.error).toBeNull();
  }

  const received = (lan: NodeChild, tag: string) =>
    lan.lines.filter((l) => l.event === 'received' && String(l.data).startsWith(tag));

  /** Sends until one datagram arrives in the LAN; returns what arrived. */
  async function expectDelivered(lan: NodeChild, port: number, tag: string): Promise<JsonLine> {
    return waitFor(`a datagram to ${WAN_IP}:${port} in the LAN (miniupnpd: ${lab.logTail()})`, async () => {
      const arrived = received(lan, tag)[0];
      if (arrived) return arrived;
      await send(port, `${tag}-${sent++}`);
      await new Promise((r) => setTimeout(r, 200));
      return received(lan, tag)[0];
    });
  }

  /** One datagram to the port is consumed by the router itself and never reaches the LAN. */
  async function expectStoppedAtRouter(lan: NodeChild, port: number, tag: string): Promise<void> {
    const before = await lab.droppedAtRouter();
    await send(port, tag);
    await waitFor(`the router to drop the datagram to ${port}`, async () =>
      (await lab.droppedAtRouter()) > before ? true : undefined,
    );
    expect(received(lan, tag)).toEqual([]);
  }

  async function startLanHost(
    port: number,
    protocol: MappingProtocol | 'auto',
    lifetime: number,
    ns = lab.lan,
  ) {
    const lan = await lab.lab.startNode(childScript, [String(port), protocol, String(lifetime)], aliases, ns);
    await lan.next((l) => l.event === 'bound');
    return lan;
  }

  const candidateOf = (line: JsonLine) => line.candidate as PortMappedCandidate;

  it.each([
    ['pcp', 41001],
    ['natpmp', 41002],
    ['upnp', 41003],
  ] as const)(
    '%s: maps a UDP port the internet can reach, and removes it on stop',
    async (protocol, port) => {
      const lan = await startLanHost(port, protocol, 600);
      // Closed before: the router's port-restricted NAT drops unsolicited inbound UDP.
      await expectStoppedAtRouter(lan, port, `${protocol}-before`);

      lan.send({ cmd: 'start' });
      const line = await lan.next((l) => l.event === 'candidate' && l.candidate !== null);
      const candidate = candidateOf(line);
      expect(candidate).toMatchObject({ endpoint: `${WAN_IP}:${candidate.port}`, ip: WAN_IP, protocol });
      expect(await lab.redirects()).toContain(`dport ${candidate.port} dnat ip to 10.0.0.2:${port}`);

      const arrived = await expectDelivered(lan, candidate.port, `${protocol}-mapped`);
      expect(String(arrived.from)).toMatch(new RegExp(`^${INTERNET_IP.replace(/\./g, '\\.')}:`));

      const from = lan.lines.length;
      lan.send({ cmd: 'stop' });
      await lan.next((l) => l.event === 'stopped', from);
      expect(lan.lines.slice(from)).toContainEqual({ event: 'candidate', candidate: null });
      expect(await lab.redirects()).not.toContain(`dport ${candidate.port} `);
      await expectStoppedAtRouter(lan, candidate.port, `${protocol}-after`);
      await lan.stop();
    },
    60_000,
  );

  it('probes all three protocols, prefers PCP, and renews before the lifetime runs out', async () => {
    const port = 41004;
    const lan = await startLanHost(port, 'auto', 3);
    lan.send({ cmd: 'probe' });
    const probed = await lan.next((l) => l.event === 'probed');
    expect(probed.offered).toEqual(['pcp', 'natpmp', 'upnp']);

    lan.send({ cmd: 'start' });
    const first = (await lan.next((l) => l.event === 'mapped')) as unknown as PortMapping;
    expect(first).toMatchObject({ protocol: 'pcp', externalIp: WAN_IP, lifetimeSeconds: 3 });
    // Two renewals, and the mapping still carries traffic after the first grant would have expired.
    await waitFor(
      'two renewals',
      () => (lan.lines.filter((l) => l.event === 'mapped').length >= 3 ? true : undefined),
      60_000,
    );
    await waitFor('the first grant to expire', () => (Date.now() > first.expiresAt + 500 ? true : undefined));
    await expectDelivered(lan, first.externalPort, 'renewed');
    const candidates = lan.lines.filter((l) => l.event === 'candidate');
    expect(candidates).toHaveLength(1); // renewals of the same endpoint are not changes
    expect(lan.lines.filter((l) => l.event === 'failure')).toEqual([]);

    const from = lan.lines.length;
    lan.send({ cmd: 'stop' });
    await lan.next((l) => l.event === 'stopped', from);
    await expectStoppedAtRouter(lan, first.externalPort, 'renewed-after');
    await lan.stop();
  }, 90_000);

  it.each([
    ['pcp', 42001],
    ['natpmp', 42002],
    ['upnp', 42003],
  ] as const)(
    '%s: a second host asking for a taken port gets another one, and both work',
    async (protocol, port) => {
      const first = await startLanHost(port, protocol, 600);
      const second = await startLanHost(port, protocol, 600, lab.lan2);
      first.send({ cmd: 'start' });
      const a = candidateOf(await first.next((l) => l.event === 'candidate' && l.candidate !== null));
      second.send({ cmd: 'start' });
      const b = candidateOf(await second.next((l) => l.event === 'candidate' && l.candidate !== null));
      expect(a).toMatchObject({ ip: WAN_IP, port, protocol });
      expect(b).toMatchObject({ ip: WAN_IP, protocol });
      expect(b.port).not.toBe(port);
      const redirects = await lab.redirects();
      expect(redirects).toContain(`dport ${a.port} dnat ip to ${LAN_IP}:${port}`);
      expect(redirects).toContain(`dport ${b.port} dnat ip to ${LAN2_IP}:${port}`);
      await expectDelivered(first, a.port, `${protocol}-first`);
      await expectDelivered(second, b.port, `${protocol}-second`);
      expect(received(second, `${protocol}-first`)).toEqual([]);
      expect(received(first, `${protocol}-second`)).toEqual([]);
      for (const host of [first, second]) {
        const from = host.lines.length;
        host.send({ cmd: 'stop' });
        await host.next((l) => l.event === 'stopped', from);
        await host.stop();
      }
      expect(await lab.redirects()).not.toMatch(/dnat/);
    },
    60_000,
  );

  it.each([
    ['pcp', 43001],
    ['natpmp', 43002],
    ['upnp', 43003],
  ] as const)(
    '%s: miniupnpd drops a mapping nobody renews (why the client renews)',
    async (protocol, port) => {
      const lan = await startLanHost(port, protocol, 4);
      lan.send({ cmd: 'map-once' });
      const mapping = (await lan.next((l) => l.event === 'mapped-once')) as unknown as PortMapping;
      expect(mapping.lifetimeSeconds).toBe(4);
      await expectDelivered(lan, mapping.externalPort, `${protocol}-fresh`);
      await waitFor(
        'miniupnpd to remove the expired mapping',
        async () => ((await lab.redirects()).includes(`dport ${mapping.externalPort} `) ? undefined : true),
        60_000,
      );
      await expectStoppedAtRouter(lan, mapping.externalPort, `${protocol}-expired`);
      await lan.stop();
    },
    90_000,
  );
});
