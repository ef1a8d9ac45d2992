import { inflateRawSync } from 'node:zlib';
import { type DeviceState, NetmapMessage } from '@trellis/proto';
import fc from 'fast-check';
import { AccountNetmap } from '../../src/domain/netmap-builder';
import { CHUNK_DEVICES } from '../../src/domain/netmap-chunks';
import { AccountPolicy } from '../../src/policy/account-policy';
import { deviceState } from '../support/device-state';
import { SAMPLE_POLICIES as POLICIES, SAMPLE_TAG_SETS as TAG_SETS } from '../support/sample-policies';
import { virtualState } from '../support/virtual-state';

/** A netmap message with its lists in a fixed order: the compressed one groups peers by chunk. */
function normalised(text: string) {
  const m = NetmapMessage.parse(JSON.parse(text));
  const byId = <T extends { id: string }>(list: T[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
  const access = m.access.map((a) => JSON.stringify({ ...a, peers: [...a.peers].sort() })).sort();
  return { ...m, peers: byId(m.peers), virtual: m.virtual && byId(m.virtual), access };
}

function expectSameSnapshots(m: AccountNetmap, ids: Iterable<string>): number {
  let checked = 0;
  for (const id of ids) {
    const plain = m.snapshotFrame(id, 7, '7.0');
    const compressed = m.compressedSnapshotFrame(id, 7, '7.0');
    if (plain === undefined) {
      expect(compressed).toBeUndefined();
      continue;
    }
    const inflated = inflateRawSync(compressed!).toString('utf8');
    expect(normalised(inflated)).toEqual(normalised(plain));
    checked++;
  }
  return checked;
}

describe('compressed snapshots (capability 3)', () => {
  it('inflate to the plain snapshot of every device, across chunks, classes and virtual devices', () => {
    const n = CHUNK_DEVICES * 2 + 5;
    const devices = Array.from({ length: n }, (_, i) =>
      deviceState(`d${i}`, `100.64.${i >> 8}.${(i & 255) + 1}`, {
        tags: TAG_SETS[i % 3],
        online: i % 2 === 0,
      }),
    );
    const cam = virtualState('cam', '100.64.9.1', devices[3]!.id, '192.168.1.100', { tags: ['tag:db'] });
    const m = new AccountNetmap('acme', 'z', 0);
    for (const d of [...devices, cam]) m.upsert(d, 1);
    expect(
      expectSameSnapshots(
        m,
        devices.map((d) => d.id),
      ),
    ).toBe(n);
    m.setPolicy(AccountPolicy.build(1, POLICIES[1]!, [...devices, cam]));
    expect(
      expectSameSnapshots(
        m,
        devices.map((d) => d.id),
      ),
    ).toBe(n);
  });

  it('are a fraction of the text once the account spans many chunks', () => {
    const m = new AccountNetmap('acme', 'z', 0);
    const ids: string[] = [];
    for (let i = 0; i < CHUNK_DEVICES * 8; i++) {
      const d = deviceState(`dev-${i}`, `100.64.${i >> 8}.${(i & 255) + 1}`, {
        online: true,
        endpoints: [`192.168.1.${(i % 250) + 1}:41641`, `203.0.113.${(i % 250) + 1}:${20000 + i}`],
      });
      ids.push(d.id);
      m.upsert(d, 1);
    }
    // Keys and ids are random: they bound the ratio (about 3.6 with 2,000 such devices).
    const text = m.snapshotFrame(ids[0]!, 7)!.length;
    expect(m.compressedSnapshotFrame(ids[0]!, 7)!.length).toBeLessThan(text / 2.5);
  });

  it('stay equal to the plain snapshot through any sequence of changes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), tags: fc.nat(2), online: fc.boolean() }),
      fc.record({ kind: fc.constant('virtual' as const), via: fc.nat(200), tags: fc.nat(2) }),
      fc.record({ kind: fc.constant('online' as const), i: fc.nat(200) }),
      fc.record({ kind: fc.constant('endpoint' as const), i: fc.nat(200), port: fc.nat(5) }),
      fc.record({ kind: fc.constant('tag' as const), i: fc.nat(200), tags: fc.nat(2) }),
      fc.record({ kind: fc.constant('remove' as const), i: fc.nat(200) }),
      fc.record({ kind: fc.constant('policy' as const), p: fc.nat(POLICIES.length - 1) }),
      fc.record({ kind: fc.constant('snapshots' as const) }),
    );
    fc.assert(
      fc.property(fc.nat(CHUNK_DEVICES + 10), fc.array(op, { maxLength: 40 }), (start, ops) => {
        const present = new Map<string, DeviceState>();
        let policyText = POLICIES[0]!;
        let policyVersion = 0;
        const m = new AccountNetmap('acme', 'z', 0);
        let serial = 0;
        let next = 0;
        const put = (d: DeviceState) => {
          present.set(d.id, d);
          m.upsert(d, ++serial);
        };
        const nth = (i: number) => [...present.values()][i % Math.max(1, present.size)];
        const add = (tags: number, online: boolean) =>
          put(
            deviceState(`n${next}`, `100.65.${next >> 8}.${(next++ & 255) + 1}`, {
              tags: TAG_SETS[tags],
              online,
            }),
          );
        for (let i = 0; i < start; i++) add(i % 3, i % 2 === 0);
        const check = () =>
          expectSameSnapshots(
            m,
            [...present.values()].filter((d) => d.via === undefined).map((d) => d.id),
          );
        for (const o of ops) {
          const d = 'i' in o ? nth(o.i) : undefined;
          if (o.kind === 'add') add(o.tags, o.online);
          else if (o.kind === 'virtual') {
            const gw = [...present.values()].filter((x) => x.via === undefined)[
              o.via % Math.max(1, present.size)
            ];
            if (gw)
              put(
                virtualState(`v${next}`, `100.66.0.${(next++ % 250) + 1}`, gw.id, `192.168.1.${next % 250}`, {
                  tags: TAG_SETS[o.tags],
                }),
              );
          } else if (!d) continue;
          else if (o.kind === 'online' && d.via === undefined) put({ ...d, online: !d.online });
          else if (o.kind === 'endpoint' && d.via === undefined)
            put({ ...d, endpoints: [`192.0.2.1:${o.port + 1}`] });
          else if (o.kind === 'tag') put({ ...d, tags: TAG_SETS[o.tags] });
          else if (o.kind === 'remove') {
            // A gateway goes with its virtual devices, as the broker removes them.
            for (const v of [...present.values()].filter((x) => x.via === d.id)) {
              present.delete(v.id);
              m.remove(v.id, ++serial);
            }
            present.delete(d.id);
            m.remove(d.id, ++serial);
          } else if (o.kind === 'policy') {
            policyText = POLICIES[o.p]!;
            m.takeChanges();
            m.setPolicy(AccountPolicy.build(++policyVersion, policyText, [...present.values()]));
          } else if (o.kind === 'snapshots') check();
        }
        check();
      }),
      { numRuns: 60 },
    );
  });
});
