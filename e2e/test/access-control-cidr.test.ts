import {
  AccessMesh,
  AgentRunner,
  applyPolicy,
  BrokerRunner,
  createAccessSetupKey,
  type DeviceSample,
  explainPolicy,
  LAB_ACCOUNT,
  Lab,
  PortForwardRouter,
  RoutedRouter,
  Steps,
  type TrellisBuild,
  trellisBuild,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Access control (issue 11), policy blocks: two setup keys with `--cidr` put their devices into two
 * blocks of the overlay. With no rules, only devices of one block see each other; an association
 * joins the two blocks (everything, both ways); rolling the policy back separates them again.
 *  site one (port-forward): a1 (block lab-a)
 *  site two (routed):       a2 (block lab-a), b1 (block lab-b)
 */
const ENFORCE_WITHIN_MS = 2_000;
const PATH_TIMEOUT_MS = 90_000;

const BLOCKS = `
  "tagOwners": {},
  "cidrs": { "lab-a": "100.80.0.0/16", "lab-b": "100.81.0.0/16" },
  "rules": []`;
const POLICY_APART = `// two blocks, no rules: each block sees only itself
{${BLOCKS}
}
`;
const POLICY_ASSOCIATED = `// the two blocks associated
{${BLOCKS},
  "associations": [["lab-a", "lab-b"]]
}
`;

describe('access control: policy blocks (cidrs) and associations (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  const mesh = new AccessMesh(() => broker, PATH_TIMEOUT_MS);
  let apartVersion = 0;
  const steps = new Steps();
  const L = () => lab;
  const m = (name: string) => mesh.member(name);

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [one, two] = await Promise.all([
      theLab.addSite('one', new PortForwardRouter([{ port: 51820, device: 'a1' }]), ['a1']),
      theLab.addSite('two', new RoutedRouter(), ['a2', 'b1']),
    ]);
    broker = new BrokerRunner(lab, brokerHost, build);
    for (const d of [one.device('a1'), two.device('a2'), two.device('b1')]) {
      mesh.add(new AgentRunner(theLab, d, 51820, build));
    }
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  const sees = async (viewer: string, peer: string) => (await mesh.wgPeers(viewer)).includes(m(peer).key);

  async function expectPing(from: string, to: string): Promise<void> {
    await mesh.expectAllowed(`${from} → ${to} ping`, () => mesh.ns(from).ping(m(to).overlay));
  }

  /** `viewer`'s samples show `peers` in WireGuard (or, with `present` false, none of them). */
  const inWg = (viewer: string, present: boolean, ...peers: string[]) => ({
    viewer,
    check: (x: DeviceSample) => peers.every((p) => x.peers.includes(m(p).key) === present),
  });

  labIt(
    L,
    'devices enrolled with --cidr get addresses in their block; unassociated blocks do not see each other',
    async () => {
      await broker.start();
      apartVersion = (await applyPolicy(broker, POLICY_APART)).version;
      const [keyA, keyB] = await Promise.all([
        createAccessSetupKey(broker, { cidr: 'lab-a' }),
        createAccessSetupKey(broker, { cidr: 'lab-b' }),
      ]);
      await Promise.all([...mesh.agents.values()].map((a) => a.start()));
      await mesh.enroll('a1', keyA);
      await mesh.enroll('a2', keyA);
      await mesh.enroll('b1', keyB);
      expect(m('a1').overlay).toMatch(/^100\.80\./);
      expect(m('a2').overlay).toMatch(/^100\.80\./);
      expect(m('b1').overlay).toMatch(/^100\.81\./);

      // One block: full access both ways.
      await expectPing('a1', 'a2');
      await expectPing('a2', 'a1');
      // Two blocks, no association, no rule: not peers at all.
      for (const [x, y] of [
        ['a1', 'b1'],
        ['a2', 'b1'],
        ['b1', 'a1'],
        ['b1', 'a2'],
      ] as const) {
        expect(await sees(x, y)).toBe(false);
        expect((await mesh.agent(x).status()).peers.map((p) => p.name)).not.toContain(y);
      }
      expect(await mesh.ns('a1').ping(m('b1').overlay, { count: 2, waitS: 1 })).toBe(false);
      expect((await mesh.agent('b1').status()).peers).toEqual([]);
      steps.complete('apart');
    },
    300_000,
  );

  labIt(
    L,
    'associating the two blocks connects them (ping both ways); rolling the policy back separates them',
    async () => {
      steps.needs('apart');
      await mesh.timeChange(
        'association applied: the blocks see each other, ms after `policy apply` returned',
        ENFORCE_WITHIN_MS,
        () => applyPolicy(broker, POLICY_ASSOCIATED),
        { a1: inWg('a1', true, 'b1'), a2: inWg('a2', true, 'b1'), b1: inWg('b1', true, 'a1', 'a2') },
      );
      await expectPing('a1', 'b1');
      await expectPing('b1', 'a1');
      await expectPing('a2', 'b1');
      const why = JSON.parse(await explainPolicy(broker, 'a1', 'b1:tcp/22')) as {
        allowed: boolean;
        reasons: Array<{ kind: string }>;
      };
      expect(why.allowed).toBe(true);
      expect(why.reasons.map((r) => r.kind)).toEqual(['association']);
      const st = await mesh.agent('b1').status();
      expect(st.peers.find((p) => p.name === 'a1')?.access).toEqual({ in: [{}], out: [{}] });

      // `policy rollback` to the version without the association: apart again.
      await mesh.timeChange(
        'rolled back: the blocks apart again, ms after `policy rollback` returned',
        ENFORCE_WITHIN_MS,
        () =>
          broker.admin([
            'policy',
            'rollback',
            String(apartVersion),
            '--data-dir',
            broker.dataDir,
            '--account',
            LAB_ACCOUNT,
            '--json',
          ]),
        { a1: inWg('a1', false, 'b1'), a2: inWg('a2', false, 'b1'), b1: inWg('b1', false, 'a1', 'a2') },
      );
      expect(await mesh.ns('a1').ping(m('b1').overlay, { count: 2, waitS: 1 })).toBe(false);
      await expectPing('a1', 'a2');
    },
    300_000,
  );
});
