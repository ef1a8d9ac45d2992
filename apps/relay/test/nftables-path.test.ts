import { NftablesPath } from '../src/kernel/nftables-path';

/** Records every command; answers `conntrack -L` with `listing`. */
function recorder(listing = '') {
  const calls: Array<{ file: string; args: string[]; input?: string }> = [];
  const run = async (file: string, args: string[], input?: string) => {
    calls.push({ file, args, ...(input === undefined ? {} : { input }) });
    return file === 'conntrack' && args[0] === '-L' ? listing : '';
  };
  return { calls, run };
}

const A = { address: '192.0.2.11', port: 51820 };
const B = { address: '192.0.2.17', port: 3662 };
const A2 = { address: '192.0.2.99', port: 1111 };

describe('NftablesPath (kernel forwarding of bound pairs)', () => {
  it('maps each bound source to the other side and SNATs to the relay port, then clears the port’s flows', async () => {
    const r = recorder();
    const path = new NftablesPath('198.51.100.20', { first: 40000, last: 40999 }, r.run);
    await path.forward('alloc-1', 40001, A, B);
    expect(r.calls[0]).toEqual({
      file: 'nft',
      args: ['-f', '-'],
      input:
        'add element ip trellis_relay pairs { 192.0.2.11 . 51820 . 40001 : 192.0.2.17 . 3662, 192.0.2.17 . 3662 . 40001 : 192.0.2.11 . 51820 }\n' +
        'add element ip trellis_relay back { 40001 : 198.51.100.20 . 40001 }\n',
    });
    // Flows that existed before (delivered to the process) must not keep their old path.
    expect(r.calls.slice(1).map((c) => `${c.file} ${c.args.join(' ')}`)).toEqual([
      'conntrack -D -p udp --orig-port-dst 40001',
      'conntrack -D -p udp --orig-port-src 40001',
    ]);
  });

  it('replaces the elements when a side rebinds, and removes them (and the flows) on stop', async () => {
    const r = recorder();
    const path = new NftablesPath('198.51.100.20', { first: 40000, last: 40999 }, r.run);
    await path.forward('alloc-1', 40001, A, B);
    r.calls.length = 0;
    await path.forward('alloc-1', 40001, A2, B);
    expect(r.calls[0]!.input).toBe(
      'delete element ip trellis_relay pairs { 192.0.2.11 . 51820 . 40001, 192.0.2.17 . 3662 . 40001 }\n' +
        'delete element ip trellis_relay back { 40001 }\n' +
        'add element ip trellis_relay pairs { 192.0.2.99 . 1111 . 40001 : 192.0.2.17 . 3662, 192.0.2.17 . 3662 . 40001 : 192.0.2.99 . 1111 }\n' +
        'add element ip trellis_relay back { 40001 : 198.51.100.20 . 40001 }\n',
    );
    r.calls.length = 0;
    await path.stop('alloc-1');
    expect(r.calls.map((c) => c.input ?? `${c.file} ${c.args.join(' ')}`)).toEqual([
      'delete element ip trellis_relay pairs { 192.0.2.99 . 1111 . 40001, 192.0.2.17 . 3662 . 40001 }\n' +
        'delete element ip trellis_relay back { 40001 }\n',
      'conntrack -D -p udp --orig-port-dst 40001',
      'conntrack -D -p udp --orig-port-src 40001',
    ]);
    r.calls.length = 0;
    await path.stop('alloc-1'); // nothing installed: nothing to do
    expect(r.calls).toEqual([]);
  });

  it('leaves IPv6 pairs to the process', async () => {
    const r = recorder();
    const path = new NftablesPath('198.51.100.20', { first: 40000, last: 40999 }, r.run);
    await path.forward('alloc-6', 40002, { address: '2001:db8::1', port: 1 }, B);
    expect(r.calls).toEqual([]);
    expect(() => new NftablesPath('2001:db8::20', { first: 1, last: 2 }, r.run)).toThrow(/IPv4/);
  });

  it('reads activity from NATed conntrack flows of its own ports only', async () => {
    const listing = [
      // Forwarded by the kernel: the reply comes from the other side, not the relay.
      'udp      17 118 src=192.0.2.11 dst=198.51.100.20 sport=51820 dport=40001 src=192.0.2.17 dst=198.51.100.20 sport=3662 dport=40001 [ASSURED] mark=0 use=1',
      // Delivered to the process (reply from the relay itself): not kernel activity.
      'udp      17 25 src=192.0.2.50 dst=198.51.100.20 sport=9 dport=40003 src=198.51.100.20 dst=192.0.2.50 sport=40003 dport=9 mark=0 use=1',
      // Another port, not ours.
      'udp      17 25 src=192.0.2.11 dst=198.51.100.20 sport=51820 dport=41641 src=192.0.2.17 dst=198.51.100.20 sport=3662 dport=41641 mark=0 use=1',
    ].join('\n');
    const r = recorder(listing);
    const path = new NftablesPath('198.51.100.20', { first: 40000, last: 40999 }, r.run);
    await path.forward('alloc-1', 40001, A, B);
    await path.forward('alloc-3', 40003, A2, B);
    expect([...(await path.activePorts())]).toEqual([40001]);
  });
});
