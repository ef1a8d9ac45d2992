import {
  type GatewayPolicy,
  NftablesGatewayBackend,
  nftGatewayHash,
  nftGatewayRemoveScript,
  nftGatewayScript,
  normalizeGateway,
} from '../src';
import { FakeRunner } from './support/fake-runner';
import { EMPTY_GATEWAY, GATEWAY_SCENARIOS, ROUTES_MASQ } from './support/gateway-fixtures';
import { expectGolden } from './support/golden';

const script = (p: GatewayPolicy) => nftGatewayScript(normalizeGateway(p));

describe('nftables gateway script', () => {
  it.each(GATEWAY_SCENARIOS)(
    '%s: matches its golden file and touches only table inet trellis_gw',
    (name, policy) => {
      const text = script(policy);
      expectGolden(`gw-nft-${name}.nft`, text);
      expect(
        text.startsWith('add table inet trellis_gw\ndelete table inet trellis_gw\ntable inet trellis_gw {'),
      ).toBe(true);
      expect(text).not.toMatch(/flush|^\s*table (?!inet trellis_gw)/m);
      // IPv6 is never forwarded to or from the mesh, whatever the scenario.
      expect(text).toContain('meta nfproto ipv6 counter name "dropped" drop');
    },
  );

  it('an empty gateway drops everything forwarded through the mesh and translates nothing', () => {
    const text = script(EMPTY_GATEWAY);
    const chainBody = (name: string) =>
      text.split(`chain ${name} {\n`)[1]!.split('\t}')[0]!.trim().split('\n');
    expect(chainBody('forward').slice(-1)[0]!.trim()).toBe('counter name "dropped" drop');
    expect(chainBody('forward').some((l) => l.includes('accept') && l.includes('@'))).toBe(false);
    expect(chainBody('prerouting')).toHaveLength(1); // the base-chain line only
    expect(chainBody('postrouting')).toHaveLength(1);
  });

  it('the digest changes with every input', () => {
    const h = nftGatewayHash(normalizeGateway(ROUTES_MASQ));
    expect(h).toMatch(/^trellis-gw-v3:[0-9a-f]{64}$/);
    const variants: GatewayPolicy[] = [
      { ...ROUTES_MASQ, lan: { ...ROUTES_MASQ.lan!, masquerade: false } },
      { ...ROUTES_MASQ, meshInterface: 'wg1' },
      { ...ROUTES_MASQ, access: ROUTES_MASQ.access.slice(1) },
      { ...ROUTES_MASQ, exitNode: { wanInterface: 'eth0', peers: [] } },
      { ...ROUTES_MASQ, exitNode: { wanInterface: 'eth0', peers: [], excluded: ['10.0.0.0/8'] } },
    ];
    for (const v of variants) expect(nftGatewayHash(normalizeGateway(v))).not.toBe(h);
  });

  it('remove deletes only the gateway table, even when it is absent', () => {
    expect(nftGatewayRemoveScript()).toBe('add table inet trellis_gw\ndelete table inet trellis_gw\n');
  });
});

describe('NftablesGatewayBackend', () => {
  it('loads the script once; the same policy again changes nothing', async () => {
    const fake = new FakeRunner().on('nft -j list table inet trellis_gw', {
      code: 1,
      stderr: 'No such file',
    });
    const b = new NftablesGatewayBackend({ run: fake.run });
    expect(await b.apply(ROUTES_MASQ)).toMatchObject({ changed: true });
    expect(await b.apply(ROUTES_MASQ)).toEqual({ changed: false });
    const loads = fake.calls.filter((c) => c.args.join(' ') === '-f -');
    expect(loads).toHaveLength(1);
    expect(loads[0]!.stdin).toBe(script(ROUTES_MASQ));
  });

  it('a restarted agent leaves identical kernel rules alone', async () => {
    const comment = nftGatewayHash(normalizeGateway(ROUTES_MASQ));
    const listing = JSON.stringify({
      nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'trellis_gw', handle: 3, comment } }],
    });
    const fake = new FakeRunner().on('nft -j list table inet trellis_gw', { stdout: listing });
    const b = new NftablesGatewayBackend({ run: fake.run });
    expect(await b.apply(ROUTES_MASQ)).toEqual({ changed: false });
    expect(await b.apply(EMPTY_GATEWAY)).toMatchObject({ changed: true });
    expect(fake.calls.filter((c) => c.args.join(' ') === '-f -')).toHaveLength(1);
  });

  it('a bad policy changes nothing; a failed load is reported and retried next time', async () => {
    const fake = new FakeRunner()
      .on('nft -j list', { code: 1 })
      .on('nft -f -', { code: 1, stderr: 'Error: Could not process rule' });
    const b = new NftablesGatewayBackend({ run: fake.run });
    expect(() => b.apply({ ...ROUTES_MASQ, meshInterface: '"; flush ruleset' })).toThrow(/meshInterface/);
    expect(fake.calls).toHaveLength(0);
    await expect(b.apply(ROUTES_MASQ)).rejects.toThrow(/Could not process rule/);
    fake.on('nft -f -', {});
    expect(await b.apply(ROUTES_MASQ)).toMatchObject({ changed: true });
  });

  it('remove runs the remove script and forgets what was applied', async () => {
    const fake = new FakeRunner().on('nft -j list', { code: 1 });
    const b = new NftablesGatewayBackend({ run: fake.run });
    await b.apply(ROUTES_MASQ);
    await b.remove();
    expect(fake.calls.at(-1)!.stdin).toBe(nftGatewayRemoveScript());
    expect(await b.apply(ROUTES_MASQ)).toMatchObject({ changed: true });
  });
});
