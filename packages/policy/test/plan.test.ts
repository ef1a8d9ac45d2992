import { PolicyComparison, planPolicy } from '@trellis/policy';
import { policyOf } from './support/compile-helpers';
import { device } from './support/sample';

const laptop = device('laptop', '100.100.0.1');
const db = device('db', '100.100.0.2', ['tag:db']);
const web = device('web', '100.100.0.3', ['tag:web']);
const devices = [laptop, db, web];
const tagOwners = { 'tag:db': [], 'tag:web': [] };

describe('planPolicy', () => {
  test('no change: an empty plan', () => {
    const p = policyOf({ rules: [{ src: ['*'], dst: ['*'] }] });
    expect(planPolicy(p, p, devices)).toEqual([]);
  });

  test('gains and losses per device, in and out', () => {
    const before = policyOf({
      tagOwners,
      rules: [{ src: ['laptop'], dst: ['tag:db'], ports: ['tcp:5432', 'tcp:22'] }],
    });
    const after = policyOf({
      tagOwners,
      rules: [
        { src: ['laptop'], dst: ['tag:db'], ports: ['tcp:5432'] },
        { src: ['laptop'], dst: ['tag:web'], ports: ['tcp:443'] },
      ],
    });
    const plan = planPolicy(before, after, devices);
    const tcp = (p: number) => ({ other: false, tcp: [[p, p]], udp: [], icmp: false });
    expect(plan).toEqual([
      {
        device: 'db',
        deviceId: db.id,
        gains: [],
        losses: [{ direction: 'in', peers: ['laptop'], ports: tcp(22), text: 'tcp 22' }],
      },
      {
        device: 'laptop',
        deviceId: laptop.id,
        gains: [{ direction: 'out', peers: ['web'], ports: tcp(443), text: 'tcp 443' }],
        losses: [{ direction: 'out', peers: ['db'], ports: tcp(22), text: 'tcp 22' }],
      },
      {
        device: 'web',
        deviceId: web.id,
        gains: [{ direction: 'in', peers: ['laptop'], ports: tcp(443), text: 'tcp 443' }],
        losses: [],
      },
    ]);
  });

  test("access through a gateway's routes is planned per routed destination", () => {
    const gw = { ...device('gw', '100.100.0.9'), routes: ['192.168.1.0/24'] };
    const rule = (ports: string[]) => ({ src: ['laptop'], dst: ['192.168.0.0/16'], ports });
    const before = policyOf({ rules: [rule(['tcp:80'])] });
    const after = policyOf({ rules: [rule(['tcp:443'])] });
    const plan = planPolicy(before, after, [laptop, gw]);
    const summary = (c: { direction: string; peers: string[]; prefix?: string; text: string }) => [
      c.direction,
      c.peers,
      c.prefix,
      c.text,
    ];
    expect(plan.map((e) => [e.device, e.gains.map(summary), e.losses.map(summary)])).toEqual([
      [
        'gw',
        [['in', ['laptop'], '192.168.0.0/16', 'via 192.168.0.0/16: tcp 443']],
        [['in', ['laptop'], '192.168.0.0/16', 'via 192.168.0.0/16: tcp 80']],
      ],
      [
        'laptop',
        [['out', ['gw'], '192.168.0.0/16', 'via 192.168.0.0/16: tcp 443']],
        [['out', ['gw'], '192.168.0.0/16', 'via 192.168.0.0/16: tcp 80']],
      ],
    ]);
    expect(new PolicyComparison(before, after, [laptop, gw]).changedDevices()).toBe(2);
    expect(planPolicy(before, after, [laptop, { ...gw, routes: ['10.0.0.0/8'] }])).toEqual([]);
  });

  test('peers with the same change are listed together; allow-all to nothing loses everything', () => {
    const before = policyOf({ rules: [{ src: ['*'], dst: ['*'] }] });
    const after = policyOf({ tagOwners, rules: [{ src: ['*'], dst: ['*'], ports: ['tcp'] }] });
    const plan = planPolicy(before, after, devices);
    expect(plan).toHaveLength(3);
    const entry = plan.find((e) => e.device === 'laptop')!;
    expect(entry.gains).toEqual([]);
    expect(entry.losses.map((c) => [c.direction, c.peers, c.text])).toEqual([
      ['in', ['db', 'web'], 'udp; icmp; other protocols'],
      ['out', ['db', 'web'], 'udp; icmp; other protocols'],
    ]);
  });

  test('devices moving between classes (a tag added by the new policy being declared)', () => {
    const before = policyOf({ tagOwners: { 'tag:db': [] }, rules: [] });
    const after = policyOf({ tagOwners, rules: [{ src: ['tag:web'], dst: ['tag:db'], ports: ['udp:53'] }] });
    const plan = planPolicy(before, after, devices);
    expect(plan.map((e) => [e.device, e.gains.map((c) => [c.direction, c.peers, c.text]), e.losses])).toEqual(
      [
        ['db', [['in', ['web'], 'udp 53']], []],
        ['web', [['out', ['db'], 'udp 53']], []],
      ],
    );
  });

  test('several devices of one class each get their entry', () => {
    const many = Array.from({ length: 5 }, (_, i) => device(`n${i}`, `100.100.1.${i + 1}`));
    const before = policyOf({ rules: [] });
    const after = policyOf({ rules: [{ src: ['*'], dst: ['*'], ports: ['icmp'] }] });
    const plan = planPolicy(before, after, many);
    expect(plan).toHaveLength(5);
    for (const e of plan) {
      const others = many.map((d) => d.name).filter((n) => n !== e.device);
      expect(e.gains.map((c) => [c.direction, c.peers, c.text])).toEqual([
        ['in', others, 'icmp'],
        ['out', others, 'icmp'],
      ]);
    }
  });
});

describe('PolicyComparison', () => {
  const policies = [
    { tagOwners, rules: [] },
    { tagOwners, rules: [{ src: ['*'], dst: ['tag:db'], ports: ['tcp:5432'] }] },
    { tagOwners, rules: [{ src: ['tag:web'], dst: ['tag:db'], ports: ['tcp:5432', 'icmp'] }] },
    { tagOwners, rules: [{ src: ['*'], dst: ['*'] }] },
    { tagOwners, rules: [{ src: ['laptop'], dst: ['web'], ports: ['udp:53'] }] },
  ].map((p) => policyOf(p));
  const fleet = [...devices, device('db-2', '100.100.0.4', ['tag:db']), device('n1', '100.100.0.5')];

  test('counts, in steps or at once, exactly the devices planPolicy lists', () => {
    for (const before of policies) {
      for (const after of policies) {
        const expected = planPolicy(before, after, fleet).length;
        const stepped = new PolicyComparison(before, after, fleet);
        let steps = 0;
        for (const _ of stepped.countChanges()) steps++;
        expect(steps).toBe(stepped.bundles.length);
        expect(stepped.changedDevices()).toBe(expected);
        expect(new PolicyComparison(before, after, fleet).changedDevices()).toBe(expected);
      }
    }
  });
});
