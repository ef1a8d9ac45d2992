import {
  AccessMesh,
  AgentRunner,
  BrokerRunner,
  HandWireGuard,
  type Host,
  Lab,
  LabDatabase,
  PortForwardRouter,
  RoutedRouter,
  Steps,
  type TrellisBuild,
  timeEach,
  trellisBuild,
  waitFor,
  wgKeyPair,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Access control (issue 11), pinned peer keys: every agent pins the key each peer had when it first
 * saw it. A key swapped behind the broker's back (a tampered database) is refused by every peer
 * that pinned the old one, and traffic under the swapped key gets nowhere; a rotation signed by
 * the old key (`trellis rotate-key`) is accepted.
 *  site r (routed, public endpoints): v1, v2
 *  site p (port-forward):             x (its key is swapped), y (rotates its key)
 *  broker on PostgreSQL (the test edits the database), an attacker host on the internet
 */
const PATH_TIMEOUT_MS = 90_000;
/** The broker's serial check reloads an account whose database serial moved (two 2 s checks). */
const NOTICE_TIMEOUT_MS = 30_000;

describe('access control: pinned keys against a tampered broker (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let db: LabDatabase | undefined;
  let broker: BrokerRunner;
  let evil: Host;
  const mesh = new AccessMesh(() => broker, PATH_TIMEOUT_MS);
  const steps = new Steps();
  const L = () => lab;
  const m = (name: string) => mesh.member(name);
  const agent = (name: string) => mesh.agent(name);
  const wgPeers = (name: string) => mesh.wgPeers(name);

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    db = await LabDatabase.create();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    evil = await lab.addHost('evil', '198.51.100.66');
    const [r, p] = await Promise.all([
      theLab.addSite('r', new RoutedRouter(), ['v1', 'v2']),
      theLab.addSite(
        'p',
        new PortForwardRouter([
          { port: 51820, device: 'x' },
          { port: 51821, device: 'y' },
        ]),
        ['x', 'y'],
      ),
    ]);
    broker = new BrokerRunner(lab, brokerHost, build, [], { name: 'brk', databaseUrl: db.url });
    mesh.add(new AgentRunner(theLab, r.device('v1'), 51820, build));
    mesh.add(new AgentRunner(theLab, r.device('v2'), 51820, build));
    mesh.add(new AgentRunner(theLab, p.device('x'), 51820, build));
    mesh.add(new AgentRunner(theLab, p.device('y'), 51821, build));
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    await db?.drop();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  async function expectPing(from: string, to: string): Promise<void> {
    await mesh.expectAllowed(`${from} → ${to} ping`, () => mesh.ns(from).ping(m(to).overlay));
  }

  labIt(
    L,
    'four devices enroll and pin each other; a rotation signed by the old key is accepted by every peer',
    async () => {
      await broker.start();
      const setupKey = await broker.createSetupKey();
      await Promise.all([...mesh.agents.values()].map((a) => a.start()));
      for (const name of mesh.agents.keys()) await mesh.enroll(name, setupKey);
      // Every peer applied (and so pinned) every other's key.
      const names = [...mesh.agents.keys()];
      await waitFor(
        async () => {
          for (const n of names) {
            const peers = await wgPeers(n);
            if (!names.filter((o) => o !== n).every((o) => peers.includes(m(o).key))) return false;
          }
          return true;
        },
        { timeoutMs: 60_000, what: 'every device to have every other in WireGuard' },
      );
      await expectPing('v1', 'y');
      await expectPing('v1', 'x');

      const oldKey = m('y').key;
      const out = await agent('y').cli(['rotate-key']);
      const newKey = /new: (\S+)/.exec(out)?.[1];
      expect(newKey).toBeDefined();
      expect(newKey).not.toBe(oldKey);
      expect(out).toContain(oldKey);
      const since = Date.now();
      for (const viewer of ['v1', 'v2', 'x']) {
        await waitFor(
          async () => {
            const st = await agent(viewer).status();
            const y = st.peers.find((p) => p.name === 'y');
            const change = st.guard?.keyChanges.find((c) => c.name === 'y');
            return y?.publicKey === newKey && y?.refused !== true && change?.kind === 'rotated';
          },
          { timeoutMs: 30_000, what: `${viewer} to accept y's rotated key` },
        );
        const peers = await wgPeers(viewer);
        expect(peers).toContain(newKey);
        expect(peers).not.toContain(oldKey);
        expect(await agent(viewer).metric('trellis_agent_key_changes_total')).toEqual({
          '{kind="rotated"}': 1,
        });
      }
      process.stdout.write(`\nkey rotation: every peer took y's new key within ${Date.now() - since} ms\n`);
      mesh.members.set('y', { ...m('y'), key: newKey! });
      await expectPing('v1', 'y');
      await expectPing('y', 'v2');
      steps.complete('pinned');
    },
    300_000,
  );

  labIt(
    L,
    "a key swapped in the broker's database is refused by every peer, and traffic under it gets nowhere",
    async () => {
      steps.needs('pinned');
      const attacker = await wgKeyPair();
      const xKey = m('x').key;
      // Behind the broker's back: x's key becomes the attacker's, and the account's serial moves so
      // the broker's serial check reloads the account and sends the change to every device.
      await db!
        .transaction([
          {
            text: `WITH d AS (UPDATE devices SET public_key = $1 WHERE name = $2 AND public_key = $3 RETURNING account_id)
                 UPDATE accounts SET netmap_serial = netmap_serial + 1 WHERE id IN (SELECT account_id FROM d) RETURNING id`,
            values: [attacker.publicKey, 'x', xKey],
          },
        ])
        .then((rows) => expect(rows).toHaveLength(1));
      const since = Date.now();
      const viewers = ['v1', 'v2', 'y'];
      const refusedX = (viewer: string) => async () => {
        const x = (await agent(viewer).status()).peers.find((p) => p.name === 'x');
        return x?.refused === true && x.publicKey === attacker.publicKey;
      };
      const times = await timeEach(since, Object.fromEntries(viewers.map((v) => [v, refusedX(v)])), {
        limitMs: NOTICE_TIMEOUT_MS,
        intervalMs: 250,
      });
      const noticed = Object.entries(times).map(([v, t]) => `${v} ${t === null ? 'never' : `${t} ms`}`);
      expect({ noticed: Object.values(times).every((t) => t !== null) }).toEqual({ noticed: true });
      for (const viewer of viewers) {
        const st = await agent(viewer).status();
        expect(st.guard?.refused).toEqual([
          expect.objectContaining({
            name: 'x',
            address: m('x').overlay,
            pinnedKey: xKey,
            offeredKey: attacker.publicKey,
          }),
        ]);
        const peers = await wgPeers(viewer);
        expect(peers).not.toContain(attacker.publicKey);
        // Refused means left out altogether: the broker no longer vouches for the old key either.
        expect(peers).not.toContain(xKey);
        expect(
          agent(viewer)
            .logLines()
            .some((l) => l.includes('REFUSED a peer') && l.includes(attacker.publicKey)),
        ).toBe(true);
        // And as metrics, for alerting.
        expect(await agent(viewer).metric('trellis_agent_peers_refused')).toEqual({ '{}': 1 });
        expect(await agent(viewer).metric('trellis_agent_peer_refusals_total')).toEqual({ '{}': 1 });
      }
      process.stdout.write(`\nkey swap refused (since the database change): ${noticed.join(', ')}\n`);

      // The attacker holds the swapped key's private half and x's overlay address, and talks to v1's
      // public endpoint directly: v1's WireGuard has no such peer, so no handshake, no packet in.
      const v1 = agent('v1');
      const wg = await HandWireGuard.start(lab!, evil.ns, {
        listenPort: 51820,
        address: m('x').overlay,
        prefixLen: 10,
      });
      await wg.addPeer({
        publicKey: m('v1').key,
        allowedIps: [`${m('v1').overlay}/32`],
        endpoint: `${v1.device.address}:${v1.listenPort}`,
        keepaliveS: 1,
      });
      const pinged = await evil.ns.ping(m('v1').overlay, { count: 10, waitS: 1 });
      expect(pinged).toBe(false);
      const dump = await wg.dump();
      const toV1 = dump.peers.find((p) => p.publicKey === m('v1').key)!;
      expect(toV1.txBytes).toBeGreaterThan(0); // it did try
      expect(toV1.latestHandshake).toBe(0);
      expect(toV1.rxBytes).toBe(0);
      expect(await wgPeers('v1')).not.toContain(attacker.publicKey);
      // And the devices that refused x still reach each other.
      await expectPing('v1', 'y');
      await expectPing('v2', 'v1');
    },
    300_000,
  );
});
