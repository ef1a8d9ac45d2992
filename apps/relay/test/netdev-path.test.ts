import { NetdevPath } from '../src/kernel/netdev-path';
import type { Route } from '../src/kernel/route-lookup';
import { ipRouteLookup } from '../src/kernel/route-lookup';

/** Records every command; answers `nft -j list counters` with `counters`. */
function recorder(counters: object = { nftables: [] }) {
  const calls: Array<{ file: string; args: string[]; input?: string }> = [];
  const run = async (file: string, args: string[], input?: string) => {
    calls.push({ file, args, ...(input === undefined ? {} : { input }) });
    return args[0] === '-j' ? JSON.stringify(counters) : '';
  };
  return { calls, run, scripts: () => calls.map((c) => c.input ?? '') };
}

const ROUTES: Record<string, Route> = {
  '192.0.2.11': { device: 'eth0', nextHop: '198.51.100.1' },
  '192.0.2.17': { device: 'eth0', nextHop: '198.51.100.1' },
  '192.0.2.99': { device: 'eth1', nextHop: '192.0.2.99' },
};
const route = async (address: string) => {
  const r = ROUTES[address];
  if (!r) throw new Error(`no route to ${address}`);
  return r;
};
const BUDGETS = {
  allocation: { capacity: 200_000, refillPerSecond: 200_000 },
  account: { capacity: 400_000, refillPerSecond: 400_000 },
};

const A = { address: '192.0.2.11', port: 51820 };
const B = { address: '192.0.2.17', port: 3662 };
const A2 = { address: '192.0.2.99', port: 1111 };
const pair = (allocationId: string, port: number, a = A, b = B, accountId = 'acc-1') => ({
  allocationId,
  accountId,
  port,
  a,
  b,
});

describe('NetdevPath (stateless kernel forwarding of bound pairs)', () => {
  it('starts by replacing any table a killed relay left', async () => {
    const r = recorder();
    await new NetdevPath(BUDGETS, r.run, route).start();
    expect(r.scripts()[0]).toMatch(/^add table netdev trellis_relay\ndelete table netdev trellis_relay\n/);
    expect(r.scripts()[0]).toContain('map sides { type ipv4_addr . inet_service . inet_service : verdict; }');
  });

  it('explains what is missing when nft fails', async () => {
    const path = new NetdevPath(BUDGETS, async () => {
      throw new Error('Operation not permitted');
    });
    await expect(path.start()).rejects.toThrow(/needs nft .* CAP_NET_ADMIN: Operation not permitted/);
  });

  it('installs one chain per direction, keyed by the bound source, in one transaction', async () => {
    const r = recorder();
    const path = new NetdevPath(BUDGETS, r.run, route);
    await path.forward(pair('alloc-1', 40001));
    expect(r.calls).toHaveLength(1);
    const lines = r.scripts()[0]!.trim().split('\n');
    // The ingress hook on the device the sides are reached through, once; fragments skip it.
    expect(lines.filter((l) => l.includes('hook ingress'))).toEqual([
      'add chain netdev trellis_relay in_eth0 { type filter hook ingress device "eth0" priority -500; policy accept; }',
    ]);
    expect(lines).toContain(
      'add rule netdev trellis_relay in_eth0 ip protocol udp ip frag-off & 0x3fff == 0 ip saddr . udp sport . udp dport vmap @sides',
    );
    // Budgets: the allocation's and the account's, as the process applies them.
    expect(lines).toContain(
      'add limit netdev trellis_relay lim_40001 { rate over 200000/second burst 200000 packets; }',
    );
    expect(lines).toContain(
      'add limit netdev trellis_relay acct_0 { rate over 400000/second burst 400000 packets; }',
    );
    // From A: rewritten to come from the relay address and port it was sent to, towards B.
    expect(lines).toContain(
      'add rule netdev trellis_relay p40001_0 counter name "fwd_40001" ip saddr set ip daddr ip daddr set 192.0.2.17 ' +
        'udp sport set udp dport udp dport set 3662 fwd ip to 198.51.100.1 device "eth0"',
    );
    expect(lines).toContain(
      'add rule netdev trellis_relay p40001_1 counter name "fwd_40001" ip saddr set ip daddr ip daddr set 192.0.2.11 ' +
        'udp sport set udp dport udp dport set 51820 fwd ip to 198.51.100.1 device "eth0"',
    );
    expect(lines.at(-1)).toBe(
      'add element netdev trellis_relay sides { 192.0.2.11 . 51820 . 40001 : jump p40001_0, 192.0.2.17 . 3662 . 40001 : jump p40001_1 }',
    );
    // Over budget: dropped (and counted) before the rewrite.
    const drops = lines.filter((l) => l.startsWith('add rule netdev trellis_relay p40001_0 limit'));
    expect(drops).toEqual([
      'add rule netdev trellis_relay p40001_0 limit name "lim_40001" counter name "drop_40001" drop',
      'add rule netdev trellis_relay p40001_0 limit name "acct_0" counter name "drop_40001" drop',
    ]);
  });

  it('rebinding swaps the map elements and rewrites the chains atomically; stop removes everything', async () => {
    const r = recorder();
    const path = new NetdevPath(BUDGETS, r.run, route);
    await path.forward(pair('alloc-1', 40001));
    await path.forward(pair('alloc-1', 40001, A2, B));
    const rebind = r.scripts()[1]!.trim().split('\n');
    expect(rebind).toContain(
      'delete element netdev trellis_relay sides { 192.0.2.11 . 51820 . 40001, 192.0.2.17 . 3662 . 40001 }',
    );
    // A new device gets its own ingress chain; eth0's is not added again.
    expect(rebind.filter((l) => l.includes('hook ingress'))).toEqual([
      'add chain netdev trellis_relay in_eth1 { type filter hook ingress device "eth1" priority -500; policy accept; }',
    ]);
    expect(rebind).toContain(
      'add rule netdev trellis_relay p40001_1 counter name "fwd_40001" ip saddr set ip daddr ip daddr set 192.0.2.99 ' +
        'udp sport set udp dport udp dport set 1111 fwd ip to 192.0.2.99 device "eth1"',
    );
    expect(rebind.indexOf('flush chain netdev trellis_relay p40001_1')).toBeGreaterThan(-1);
    await path.stop('alloc-1');
    expect(r.scripts()[2]!.trim().split('\n')).toEqual([
      'delete element netdev trellis_relay sides { 192.0.2.99 . 1111 . 40001, 192.0.2.17 . 3662 . 40001 }',
      'delete chain netdev trellis_relay p40001_0',
      'delete chain netdev trellis_relay p40001_1',
      'delete counter netdev trellis_relay fwd_40001',
      'delete counter netdev trellis_relay drop_40001',
      'delete limit netdev trellis_relay lim_40001',
      'delete limit netdev trellis_relay acct_0',
    ]);
    r.calls.length = 0;
    await path.stop('alloc-1'); // nothing installed: nothing to do
    expect(r.calls).toEqual([]);
  });

  it('shares an account limit between that account’s allocations and drops it with the last', async () => {
    const r = recorder();
    const path = new NetdevPath(BUDGETS, r.run, route);
    await path.forward(pair('alloc-1', 40001));
    await path.forward(pair('alloc-2', 40002, A2, B));
    await path.forward(pair('alloc-3', 40003, A2, A, 'acc-2'));
    expect(r.scripts()[1]).toContain('limit name "acct_0"');
    expect(r.scripts()[2]).toContain('limit name "acct_1"');
    await path.stop('alloc-1');
    expect(r.scripts()[3]).not.toContain('delete limit netdev trellis_relay acct_0');
    await path.stop('alloc-2');
    expect(r.scripts()[4]).toContain('delete limit netdev trellis_relay acct_0');
  });

  it('a failed install holds no account limit: the last real allocation still deletes it', async () => {
    const r = recorder();
    let fail = true;
    const run = async (file: string, args: string[], input?: string) => {
      if (fail) throw new Error('nft: busy');
      return r.run(file, args, input);
    };
    const path = new NetdevPath(BUDGETS, run, route);
    await expect(path.forward(pair('alloc-1', 40001))).rejects.toThrow(/busy/);
    fail = false;
    await path.forward(pair('alloc-2', 40002));
    await path.stop('alloc-2');
    expect(r.scripts().at(-1)).toMatch(/delete limit netdev trellis_relay acct_\d+\n$/);
  });

  it('leaves IPv6 pairs, sides on this host and unroutable sides to the process', async () => {
    const r = recorder();
    const path = new NetdevPath(BUDGETS, r.run, async (address) =>
      address === '127.0.0.1' ? null : route(address),
    );
    await path.forward(pair('alloc-l', 40003, { address: '127.0.0.1', port: 5 }, B));
    await path.forward(pair('alloc-6', 40002, { address: '2001:db8::1', port: 1 }, B));
    expect(r.calls).toEqual([]);
    await path.forward(pair('alloc-1', 40001));
    await expect(
      path.forward(pair('alloc-1', 40001, { address: '203.0.113.5', port: 9 }, B)),
    ).rejects.toThrow(/no route/);
    // What was installed for the old binding is gone: the process forwards from now on.
    expect(r.scripts().at(-1)).toContain('delete element netdev trellis_relay sides');
  });

  it('reports counters per allocation from the named counters', async () => {
    const r = recorder({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'netdev', name: 'fwd_40001', packets: 120, bytes: 170_000 } },
        { counter: { family: 'netdev', name: 'drop_40001', packets: 3, bytes: 400 } },
        { counter: { family: 'netdev', name: 'fwd_40777', packets: 5, bytes: 5 } },
      ],
    });
    const path = new NetdevPath(BUDGETS, r.run, route);
    expect(await path.counters()).toEqual(new Map()); // nothing installed: nft not even asked
    expect(r.calls).toEqual([]);
    await path.forward(pair('alloc-1', 40001));
    expect(await path.counters()).toEqual(
      new Map([['alloc-1', { packets: 120, bytes: 170_000, rateLimited: 3 }]]),
    );
    expect(r.calls.at(-1)!.args).toEqual(['-j', 'list', 'counters', 'table', 'netdev', 'trellis_relay']);
  });
});

describe('ipRouteLookup', () => {
  const answering = (json: string) => ipRouteLookup(async () => json);

  it('hands a packet to the gateway, or to an on-link destination itself', async () => {
    await expect(
      answering('[{"dst":"10.2.0.2","gateway":"10.3.0.1","dev":"vpr","prefsrc":"10.3.0.2"}]')('10.2.0.2'),
    ).resolves.toEqual({ device: 'vpr', nextHop: '10.3.0.1' });
    await expect(answering('[{"dst":"10.3.0.1","dev":"vpr"}]')('10.3.0.1')).resolves.toEqual({
      device: 'vpr',
      nextHop: '10.3.0.1',
    });
  });

  it('leaves local addresses to the process and refuses odd device names', async () => {
    await expect(answering('[{"type":"local","dst":"10.3.0.2","dev":"lo"}]')('10.3.0.2')).resolves.toBeNull();
    await expect(answering('[{"dst":"10.2.0.2","dev":"a\\" b"}]')('10.2.0.2')).rejects.toThrow(/device name/);
  });
});
