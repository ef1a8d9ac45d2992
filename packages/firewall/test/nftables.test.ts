import { NftablesBackend, nftFullScript, nftState, nftStateHash, normalizeInbound } from '../src';
import { FakeRunner } from './support/fake-runner';
import { AFTER, BEFORE, SELF } from './support/fixtures';
import { expectGolden } from './support/golden';

/** What `nft -j list table inet trellis` prints for a table loaded from `policy`. */
function kernelJson(policy = BEFORE, opts: { hash?: string; inputRules?: number } = {}): string {
  const s = nftState(normalizeInbound(policy));
  const set = (name: string, elem: readonly unknown[]) => ({
    set: { family: 'inet', name, table: 'trellis', elem },
  });
  const rules = (chain: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      rule: { family: 'inet', table: 'trellis', chain, handle: i, expr: [] },
    }));
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'trellis', handle: 1 } },
      set('state', [{ elem: { val: SELF, comment: opts.hash ?? nftStateHash(s) } }]),
      set('allow_all', s.allowAll),
      set('allow_icmp', s.allowIcmp),
      set(
        'allow_ports',
        s.allowPorts.map((e) => ({ concat: e.split(' . ') })),
      ),
      { chain: { family: 'inet', table: 'trellis', name: 'input' } },
      ...rules('input', opts.inputRules ?? 9),
      ...rules('output', 2),
    ],
  });
}

const CONNTRACK_LIST = [
  'tcp      6 431999 ESTABLISHED src=100.64.0.3 dst=100.64.0.1 sport=50000 dport=22 src=100.64.0.1 dst=100.64.0.3 sport=22 dport=50000 [ASSURED] mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=100.64.0.3 dst=100.64.0.1 sport=50001 dport=80 src=100.64.0.1 dst=100.64.0.3 sport=80 dport=50001 [ASSURED] mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=100.64.0.4 dst=100.64.0.1 sport=50002 dport=80 src=100.64.0.1 dst=100.64.0.4 sport=80 dport=50002 [ASSURED] mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=100.64.0.1 dst=100.64.0.3 sport=40000 dport=80 src=100.64.0.3 dst=100.64.0.1 sport=80 dport=40000 [ASSURED] mark=0 use=1',
  'udp      17 29 src=100.64.0.3 dst=100.64.0.1 sport=5353 dport=9999 [UNREPLIED] src=100.64.0.1 dst=100.64.0.3 sport=9999 dport=5353 mark=0 use=1',
].join('\n');

function fakeKernel(): FakeRunner {
  return new FakeRunner()
    .on('nft -j list table', { code: 1, stderr: 'Error: No such file or directory' })
    .on('conntrack -D', {
      code: 1,
      stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n',
    })
    .on('conntrack -D -s 100.64.0.3 -d 100.64.0.1 -p tcp --sport 50001', {
      stderr: 'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n',
    })
    .on('conntrack -D -s 100.64.0.2 -d 100.64.0.1 -p tcp', {
      stderr: 'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n',
    })
    .on('conntrack -L', { stdout: CONNTRACK_LIST, stderr: '5 flow entries have been shown.\n' });
}

describe('NftablesBackend with a recording runner', () => {
  it('first apply: reads the kernel, loads the whole table in one nft -f -, audits conntrack', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    const result = await backend.apply(BEFORE);
    expect(result).toEqual({ changed: true, mode: 'full', cut: 0 });
    expect(fake.lines()).toEqual([
      'nft -j list table inet trellis',
      'nft -f -',
      'conntrack -L -d 100.64.0.1',
    ]);
    expect(fake.calls[1]!.stdin).toBe(nftFullScript(nftState(normalizeInbound(BEFORE))));
  });

  it('applying the same policy again runs no command at all', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    await backend.apply(BEFORE);
    fake.reset();
    // Equal content in another order and spelling is the same policy.
    const reordered = { ...BEFORE, peers: [...BEFORE.peers].reverse() };
    expect(await backend.apply(reordered)).toEqual({ changed: false, mode: 'none', cut: 0 });
    expect(fake.calls).toEqual([]);
  });

  it('a change of set elements only is one incremental transaction, then cuts exactly the forbidden flows', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    await backend.apply(BEFORE);
    fake.reset();
    const result = await backend.apply(AFTER);
    expect(result).toEqual({ changed: true, mode: 'incremental', cut: 3 });
    expectGolden('nft-change.transcript', fake.transcript());
    // Never a flow this device started, never the still-allowed ssh of .3, never peer .4.
    const cuts = fake.lines().filter((l) => l.startsWith('conntrack -D'));
    expect(cuts).toEqual([
      'conntrack -D -s 100.64.0.2 -d 100.64.0.1 -p tcp',
      'conntrack -D -s 100.64.0.10 -d 100.64.0.1 -p tcp',
      'conntrack -D -s 100.64.0.3 -d 100.64.0.1 -p tcp --sport 50001 --dport 80',
    ]);
  });

  it('a new interface or address is a full reload', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    await backend.apply(BEFORE);
    fake.reset();
    expect((await backend.apply({ ...BEFORE, interfaceName: 'wg-a1' })).mode).toBe('full');
    expect(fake.calls[0]!.stdin).toMatch(/^add table inet trellis\ndelete table inet trellis\n/);
  });

  it('falls back to a full reload when the incremental transaction fails (table edited by hand)', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    await backend.apply(BEFORE);
    fake.reset();
    fake.on('nft -f -', (c) =>
      c.stdin?.startsWith('delete element') ? { code: 1, stderr: 'No such file' } : {},
    );
    expect((await backend.apply(AFTER)).mode).toBe('full');
    expect(fake.lines().slice(0, 2)).toEqual(['nft -f -', 'nft -f -']);
  });

  it('after a restart, a kernel that already holds the asked-for state is left alone', async () => {
    const fake = fakeKernel().on('nft -j list table', { stdout: kernelJson(BEFORE) });
    const backend = new NftablesBackend({ run: fake.run });
    expect(await backend.apply(BEFORE)).toEqual({ changed: false, mode: 'none', cut: 0 });
    expect(fake.lines()).toEqual(['nft -j list table inet trellis']);
    // And it knows the state now: the next change is incremental.
    fake.reset();
    expect((await backend.apply(AFTER)).mode).toBe('incremental');
  });

  it.each([
    ['another digest', { hash: 'trellis-v1:00' }],
    ['a rule missing', { inputRules: 8 }],
  ])('after a restart, a kernel table with %s is replaced in full', async (_what, opts) => {
    const fake = fakeKernel().on('nft -j list table', { stdout: kernelJson(BEFORE, opts) });
    const backend = new NftablesBackend({ run: fake.run });
    expect((await backend.apply(BEFORE)).mode).toBe('full');
  });

  it('a policy that changed while the agent was down: full reload, then every forbidden flow toward this device is cut', async () => {
    const fake = fakeKernel().on('nft -j list table', { stdout: kernelJson(BEFORE) });
    const backend = new NftablesBackend({ run: fake.run });
    const result = await backend.apply(AFTER);
    expect(result).toMatchObject({ changed: true, mode: 'full' });
    expect(fake.lines().filter((l) => l.startsWith('conntrack'))).toEqual([
      'conntrack -L -d 100.64.0.1',
      'conntrack -D -s 100.64.0.3 -d 100.64.0.1 -p tcp --sport 50001 --dport 80',
    ]);
  });

  it('a missing conntrack tool is reported in the result, never thrown', async () => {
    const fake = fakeKernel().on('conntrack', new Error('spawn conntrack ENOENT'));
    const backend = new NftablesBackend({ run: fake.run });
    await backend.apply(BEFORE);
    const result = await backend.apply(AFTER);
    expect(result).toEqual({
      changed: true,
      mode: 'incremental',
      cut: 0,
      cutError: 'spawn conntrack ENOENT',
    });
  });

  it('an nft failure throws, and the next apply starts from the kernel again', async () => {
    const fake = fakeKernel().on('nft -f -', {
      code: 1,
      stderr: 'Error: Could not process rule: Operation not permitted',
    });
    const backend = new NftablesBackend({ run: fake.run });
    await expect(backend.apply(BEFORE)).rejects.toThrow(/Operation not permitted/);
    fake.reset();
    await expect(backend.apply(BEFORE)).rejects.toThrow();
    expect(fake.lines()[0]).toBe('nft -j list table inet trellis');
  });

  it('an invalid policy throws before any command', async () => {
    const fake = fakeKernel();
    const backend = new NftablesBackend({ run: fake.run });
    await expect(backend.apply({ ...BEFORE, interfaceName: 'wg0"; flush ruleset' })).rejects.toThrow(
      /interfaceName/,
    );
    expect(fake.calls).toEqual([]);
  });

  it('remove deletes table inet trellis only; counters come from the named counters', async () => {
    const fake = fakeKernel().on('nft -j list counters', {
      stdout: JSON.stringify({
        nftables: [
          { metainfo: {} },
          { counter: { family: 'inet', name: 'accepted', table: 'trellis', packets: 5, bytes: 420 } },
          { counter: { family: 'inet', name: 'dropped', table: 'trellis', packets: 2, bytes: 120 } },
          { counter: { family: 'inet', name: 'rejected', table: 'trellis', packets: 1, bytes: 52 } },
        ],
      }),
    });
    const backend = new NftablesBackend({ run: fake.run });
    expect(await backend.counters()).toEqual({
      accepted: { packets: 5, bytes: 420 },
      dropped: { packets: 2, bytes: 120 },
      rejected: { packets: 1, bytes: 52 },
    });
    await backend.remove();
    expect(fake.calls.at(-1)).toEqual({
      cmd: 'nft',
      args: ['-f', '-'],
      stdin: 'add table inet trellis\ndelete table inet trellis\n',
    });
  });
});
