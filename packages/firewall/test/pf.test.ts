import { normalizeInbound, PfBackend, parsePfVerboseRules, pfAnchorRules, pfMainWithAnchor } from '../src';
import { FakeRunner } from './support/fake-runner';
import { AFTER, BEFORE } from './support/fixtures';
import { expectGolden } from './support/golden';

const MAC = { ...BEFORE, interfaceName: 'utun4' };
const MAC_AFTER = { ...AFTER, interfaceName: 'utun4' };

const PF_CONF = `scrub-anchor "com.apple/*"
nat-anchor "com.apple/*"
rdr-anchor "com.apple/*"
dummynet-anchor "com.apple/*"
anchor "com.apple/*"
load anchor "com.apple" from "/etc/pf.anchors/com.apple"
`;

function fakePf(mainRules = 'anchor "com.apple/*" all\n'): FakeRunner {
  return new FakeRunner()
    .on('pfctl -E', { stderr: 'pf enabled\nToken : 7212003581\n' })
    .on('pfctl -sr', { stdout: mainRules })
    .on('pfctl -a trellis -sr', { code: 0, stdout: '' })
    .on('pfctl -k', { stderr: 'killed 2 states from 1 sources and 0 destinations\n' });
}

const backend = (fake: FakeRunner) => new PfBackend({ run: fake.run, readMainConfig: async () => PF_CONF });

describe('PfBackend (golden files; pf itself cannot run here)', () => {
  it('generates the anchor: tables of peers, quick passes with state, a final quick block with the digest', () => {
    expectGolden('pf-anchor.conf', pfAnchorRules(normalizeInbound(MAC)));
    expectGolden('pf-anchor-after.conf', pfAnchorRules(normalizeInbound(MAC_AFTER)));
  });

  it('adds the anchor line to pf.conf before its load anchor lines', () => {
    expectGolden('pf-main.conf', pfMainWithAnchor(PF_CONF));
    expect(pfMainWithAnchor('set skip on lo0')).toBe('set skip on lo0\nanchor "trellis"\n');
  });

  it('first apply enables pf, hooks the anchor into the main ruleset, loads it; same text again runs nothing', async () => {
    const fake = fakePf();
    const pf = backend(fake);
    expect(await pf.apply(MAC)).toEqual({ changed: true, mode: 'full', cut: 2 });
    expect(await pf.apply(MAC)).toEqual({ changed: false, mode: 'none', cut: 0 });
    expectGolden('pf-first-apply.transcript', fake.transcript());
  });

  it('a change reloads the anchor and kills the states of peers that lost something', async () => {
    const fake = fakePf('anchor "com.apple/*" all\nanchor "trellis" all\n');
    const pf = backend(fake);
    await pf.apply(MAC);
    fake.reset();
    expect(await pf.apply(MAC_AFTER)).toEqual({ changed: true, mode: 'full', cut: 6 });
    expectGolden('pf-change.transcript', fake.transcript());
  });

  it('after a restart, an anchor carrying the same digest is left alone', async () => {
    const label = /label "([^"]+)"/.exec(pfAnchorRules(normalizeInbound(MAC)))![1];
    const fake = fakePf('anchor "trellis" all\n').on('pfctl -a trellis -sr', {
      stdout: `block drop in quick on utun4 all label "${label}"\n`,
    });
    expect(await backend(fake).apply(MAC)).toEqual({ changed: false, mode: 'none', cut: 0 });
    expect(fake.lines()).toEqual(['pfctl -E', 'pfctl -sr', 'pfctl -a trellis -sr']);
  });

  it('remove flushes the anchor and releases the enable token; counters parse -vsr', async () => {
    const fake = fakePf().on('pfctl -a trellis -vsr', {
      stdout: [
        'pass out on utun4 inet all flags S/SA keep state',
        '  [ Evaluations: 40        Packets: 90        Bytes: 9000        States: 2     ]',
        'pass in quick on utun4 inet proto tcp from <trellis_p0> to 100.64.0.1 port = ssh flags S/SA keep state',
        '  [ Evaluations: 10        Packets: 20        Bytes: 3000        States: 1     ]',
        '  [ Inserted: uid 0 pid 321 State Creations: 1     ]',
        'pass in quick on utun4 inet from <trellis_all> to 100.64.0.1 flags S/SA keep state',
        '  [ Evaluations: 5         Packets: 7         Bytes: 700         States: 0     ]',
        'block drop in quick on utun4 all label "trellis:0123"',
        '  [ Evaluations: 4         Packets: 4         Bytes: 240         States: 0     ]',
      ].join('\n'),
    });
    const pf = backend(fake);
    await pf.apply(MAC);
    expect(await pf.counters()).toEqual({
      accepted: { packets: 27, bytes: 3700 },
      dropped: { packets: 4, bytes: 240 },
    });
    fake.reset();
    await pf.remove();
    expect(fake.lines()).toEqual(['pfctl -a trellis -F all', 'pfctl -X 7212003581']);
    expect(parsePfVerboseRules('')).toEqual({
      accepted: { packets: 0, bytes: 0 },
      dropped: { packets: 0, bytes: 0 },
    });
  });
});
