import { ALLOW_ALL } from '@trellis/proto';
import { compile, sortedAccess } from './support/compile-helpers';
import { device } from './support/sample';

const tags = (...t: string[]) => Object.fromEntries(t.map((x) => [x, []]));

describe('rules', () => {
  const a = device('a', '100.100.0.1');
  const b = device('b', '100.100.0.2');
  const c = device('c', '100.100.0.3');

  test('one direction: out for the source, in for the destination', () => {
    const p = compile({ rules: [{ src: ['a'], dst: ['b'], ports: ['tcp:22'] }] }, [a, b, c]);
    expect(p.access(a.id, b.id)).toEqual({ in: [], out: [{ proto: 'tcp', ports: [[22, 22]] }] });
    expect(p.access(b.id, a.id)).toEqual({ in: [{ proto: 'tcp', ports: [[22, 22]] }], out: [] });
    expect(p.access(a.id, c.id)).toBeNull();
    expect(p.access(b.id, c.id)).toBeNull();
  });

  test('the union of rules, merged and sorted', () => {
    const p = compile(
      {
        rules: [
          { src: ['a'], dst: ['b'], ports: ['tcp:80', 'udp:53'] },
          {
            src: ['*'],
            dst: ['b'],
            ports: ['tcp:23-30', 'tcp:22', 'icmp', 'tcp:1000-2000', 'tcp:1500-2500'],
          },
        ],
      },
      [a, b, c],
    );
    expect(p.access(a.id, b.id)?.out).toEqual([
      {
        proto: 'tcp',
        ports: [
          [22, 30],
          [80, 80],
          [1000, 2500],
        ],
      },
      { proto: 'udp', ports: [[53, 53]] },
      { proto: 'icmp' },
    ]);
    expect(p.access(c.id, b.id)?.out).toEqual([
      {
        proto: 'tcp',
        ports: [
          [22, 30],
          [1000, 2500],
        ],
      },
      { proto: 'icmp' },
    ]);
  });

  test('canonical forms: everything, whole protocols', () => {
    const out = (ports?: string[]) =>
      compile({ rules: [{ src: ['a'], dst: ['b'], ...(ports ? { ports } : {}) }] }, [a, b]).access(a.id, b.id)
        ?.out;
    expect(out()).toEqual(ALLOW_ALL);
    expect(out(['*'])).toEqual([{}]);
    expect(out(['tcp:22', '*'])).toEqual([{}]);
    expect(out(['tcp'])).toEqual([{ proto: 'tcp' }]);
    expect(out(['tcp:1-65535'])).toEqual([{ proto: 'tcp' }]);
    expect(out(['tcp:1-100', 'tcp:101-65535'])).toEqual([{ proto: 'tcp' }]);
    expect(out(['icmp', 'udp', 'tcp'])).toEqual([{ proto: 'tcp' }, { proto: 'udp' }, { proto: 'icmp' }]);
  });

  test('a device never sees itself, and unknown devices see nothing', () => {
    const p = compile({ rules: [{ src: ['*'], dst: ['*'] }] }, [a, b]);
    expect(p.access(a.id, a.id)).toBeNull();
    expect([...p.visiblePeers(a.id)]).toEqual([b.id]);
    expect(p.access(a.id, 'nobody')).toBeNull();
    expect([...p.visiblePeers('nobody')]).toEqual([]);
    expect(p.peersByAccess('nobody')).toEqual([]);
  });

  test('no rules: nobody sees anybody', () => {
    const p = compile({}, [a, b, c]);
    expect([...p.visiblePeers(a.id)]).toEqual([]);
    expect(p.peersByAccess(a.id)).toEqual([]);
  });
});

describe('selectors', () => {
  const laptop = device('laptop', '100.100.0.1');
  const alice = device('alice-pc', '100.100.0.2', [], 'Alice@Acme.com');
  const bob = device('bob-pc', '100.100.0.3', [], 'bob@acme.com');
  const db = device('db', '100.100.0.4', ['tag:db', 'tag:unknown']);
  const cam = device('cam', '100.100.0.5', ['tag:cams']);
  const all = [laptop, alice, bob, db, cam];
  const reaches = (policy: object, from: { id: string }) =>
    all.filter((d) => d.id !== from.id && compile(policy, all).access(from.id, d.id)?.out.length);

  test('tags, users (case-insensitive) and names', () => {
    const policy = {
      tagOwners: tags('tag:db', 'tag:cams'),
      rules: [
        { src: ['user:alice@acme.com'], dst: ['tag:db'] },
        { src: ['laptop'], dst: ['tag:cams'] },
      ],
    };
    expect(reaches(policy, alice)).toEqual([db]);
    expect(reaches(policy, laptop)).toEqual([cam]);
    expect(reaches(policy, bob)).toEqual([]);
  });

  test('nested groups', () => {
    const policy = {
      groups: {
        'group:all': ['group:eng', 'cam'],
        'group:eng': ['group:leads', 'laptop'],
        'group:leads': ['user:bob@acme.com'],
      },
      rules: [{ src: ['group:all'], dst: ['db'] }],
    };
    expect(all.filter((d) => compile(policy, all).access(d.id, db.id)?.out.length)).toEqual([
      laptop,
      bob,
      cam,
    ]);
  });

  test('a tag a device carries but the policy does not declare matches nothing', () => {
    const policy = { tagOwners: tags('tag:db'), rules: [{ src: ['tag:db'], dst: ['*'] }] };
    expect(reaches(policy, db)).toEqual([laptop, alice, bob, cam]);
    expect(reaches(policy, cam)).toEqual([]);
  });
});

describe('blocks', () => {
  const cidrs = { 'site-a': '100.64.0.0/16', 'site-a-cams': '100.64.8.0/24', 'site-b': '100.65.0.0/16' };
  const a1 = device('a1', '100.64.0.1');
  const a2 = device('a2', '100.64.1.2');
  const cam1 = device('cam1', '100.64.8.1');
  const cam2 = device('cam2', '100.64.8.2');
  const b1 = device('b1', '100.65.0.1');
  const out1 = device('out1', '100.100.0.1');
  const out2 = device('out2', '100.100.0.2');
  const all = [a1, a2, cam1, cam2, b1, out1, out2];
  const sees = (p: ReturnType<typeof compile>, x: { id: string }) =>
    [...p.visiblePeers(x.id)].map((id) => all.find((d) => d.id === id)!.name).sort();

  test('devices of the same innermost block see each other fully', () => {
    const p = compile({ cidrs }, all);
    expect(p.access(a1.id, a2.id)).toEqual({ in: [{}], out: [{}] });
    expect(sees(p, a1)).toEqual(['a2']);
    expect(sees(p, cam1)).toEqual(['cam2']);
    expect(sees(p, b1)).toEqual([]);
    expect(sees(p, out1)).toEqual([]); // outside every block: no implicit rule
  });

  test('an association joins two blocks, sub-blocks included', () => {
    const p = compile({ cidrs, associations: [['site-a', 'site-b']] }, all);
    expect(sees(p, b1)).toEqual(['a1', 'a2', 'cam1', 'cam2']);
    expect(p.access(b1.id, cam1.id)).toEqual({ in: [{}], out: [{}] });
    expect(sees(p, a1)).toEqual(['a2', 'b1']); // not cam1: another innermost block
  });

  test('cidr: selectors include sub-blocks', () => {
    const p = compile({ cidrs, rules: [{ src: ['cidr:site-a'], dst: ['out1'], ports: ['tcp:443'] }] }, all);
    for (const d of [a1, a2, cam1, cam2]) {
      expect(p.access(d.id, out1.id)?.out).toEqual([{ proto: 'tcp', ports: [[443, 443]] }]);
    }
    expect(p.access(b1.id, out1.id)).toBeNull();
  });

  test('rules add to what blocks open', () => {
    const p = compile({ cidrs, rules: [{ src: ['cam1'], dst: ['a1'], ports: ['icmp'] }] }, all);
    expect(p.access(cam1.id, a1.id)).toEqual({ in: [], out: [{ proto: 'icmp' }] });
    expect(p.access(cam1.id, cam2.id)).toEqual({ in: [{}], out: [{}] });
  });
});

describe('peersByAccess', () => {
  test('groups peers by identical (in, out)', () => {
    const v = device('viewer', '100.100.0.1');
    const webs = [device('web1', '100.100.0.2', ['tag:web']), device('web2', '100.100.0.3', ['tag:web'])];
    const ssh = device('ssh', '100.100.0.4', ['tag:ssh']);
    const admin = device('admin', '100.100.0.5', ['tag:admin']);
    const hidden = device('hidden', '100.100.0.6');
    const p = compile(
      {
        tagOwners: tags('tag:web', 'tag:ssh', 'tag:admin'),
        rules: [
          { src: ['viewer'], dst: ['tag:web'], ports: ['tcp:443', 'tcp:80'] },
          { src: ['viewer'], dst: ['tag:ssh'], ports: ['tcp:22'] },
          { src: ['tag:admin'], dst: ['*'] },
        ],
      },
      [v, ...webs, ssh, admin, hidden],
    );
    expect(sortedAccess(p.peersByAccess(v.id))).toEqual(
      sortedAccess([
        {
          peers: webs.map((w) => w.id),
          in: [],
          out: [
            {
              proto: 'tcp',
              ports: [
                [80, 80],
                [443, 443],
              ],
            },
          ],
        },
        { peers: [ssh.id], in: [], out: [{ proto: 'tcp', ports: [[22, 22]] }] },
        { peers: [admin.id], in: [{}], out: [] },
      ]),
    );
    expect([...p.visiblePeers(hidden.id)]).toEqual([admin.id]);
  });
});
