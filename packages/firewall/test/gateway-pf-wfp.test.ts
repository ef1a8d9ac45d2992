import { buildWfpGatewayPlan, normalizeGateway, pfGatewayRules } from '../src';
import { EXIT_NODE, GATEWAY_SCENARIOS, ROUTES_MASQ, VIRTUAL_DEVICES } from './support/gateway-fixtures';
import { expectGolden } from './support/golden';

const LUIDS = { mesh: 1689399632855040n, lan: '1689399632920576', wan: 1689399632986112n };

describe('pf gateway anchor', () => {
  it.each(GATEWAY_SCENARIOS)('%s: matches its golden file', (name, policy) => {
    const text = pfGatewayRules(normalizeGateway(policy));
    expectGolden(`gw-pf-${name}.conf`, text);
    // IPv6 never crosses the mesh interface; whatever was not passed beyond the mesh is blocked.
    expect(text).toContain('block drop in quick on trellis0 inet6 all');
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      'block drop in quick on trellis0 inet from any to ! 100.64.0.0/10',
    );
  });

  it('virtual devices: one rdr and one nat each, pass rules on the LAN address require the rdr tag', () => {
    const text = pfGatewayRules(normalizeGateway(VIRTUAL_DEVICES));
    expect(text.match(/^rdr /gm)).toHaveLength(2);
    expect(text).toContain('rdr on trellis0 inet from any to 100.64.7.1 tag trellis_vd -> 192.168.1.100');
    expect(text).toContain(
      'pass in quick on trellis0 inet proto tcp from 100.64.0.2 to 192.168.1.100 port 631 tagged trellis_vd flags S/SA keep state',
    );
    // 1:1 out as well: each LAN host under its own mesh address, never the gateway's.
    expect(text).toContain('nat on trellis0 inet from 192.168.1.100 to 100.64.0.0/10 -> 100.64.7.1');
    expect(text).toContain('nat on trellis0 inet from 192.168.1.101 to 100.64.0.0/10 -> 100.64.7.2');
    expect(text).not.toContain('-> 100.64.0.1');
  });

  it('masquerade follows lan.masquerade', () => {
    const masq = pfGatewayRules(normalizeGateway(ROUTES_MASQ));
    const plain = pfGatewayRules(
      normalizeGateway({ ...ROUTES_MASQ, lan: { ...ROUTES_MASQ.lan!, masquerade: false } }),
    );
    expect(masq).toMatch(/^nat on eth1 inet from 100\.64\.0\.0\/10 to any -> \(eth1\)$/m);
    expect(plain).not.toMatch(/^nat /m);
  });
});

describe('WFP gateway plan', () => {
  it.each(GATEWAY_SCENARIOS)('%s: matches its golden file', (name, policy) => {
    const plan = buildWfpGatewayPlan(normalizeGateway(policy), LUIDS);
    expectGolden(`gw-wfp-${name}.json.golden`, `${JSON.stringify(plan, null, 2)}\n`);
    // The catch-all blocks; an exit node also blocks its excluded prefixes (weight 8, above its permits).
    const blocks = plan.filters.filter((f) => f.action === 'FWP_ACTION_BLOCK' && f.weight === 1);
    const excluded = plan.filters.filter((f) => f.action === 'FWP_ACTION_BLOCK' && f.weight === 8);
    expect(excluded.map((f) => f.name.split(' ').at(-1))).toEqual(
      normalizeGateway(policy).exitNode?.excluded ?? [],
    );
    expect(blocks.map((f) => f.layer)).toEqual([
      'FWPM_LAYER_IPFORWARD_V4',
      'FWPM_LAYER_IPFORWARD_V4',
      'FWPM_LAYER_IPFORWARD_V6',
      'FWPM_LAYER_IPFORWARD_V6',
    ]);
    expect(new Set(plan.filters.map((f) => f.key)).size).toBe(plan.filters.length);
  });

  it('fails closed on what IPFORWARD cannot express, and says so', () => {
    const plan = buildWfpGatewayPlan(normalizeGateway(ROUTES_MASQ), LUIDS);
    // Only .3's allow-everything on 10.20.0.0/16 becomes permits (there and back).
    expect(plan.filters.filter((f) => f.action === 'FWP_ACTION_PERMIT').map((f) => f.name)).toEqual([
      'Trellis gateway permit 100.64.0.3 to 10.20.0.0/16',
      'Trellis gateway permit replies 10.20.0.0/16 to 100.64.0.3',
    ]);
    expect(plan.unenforced.map((u) => `${u.peer}>${u.destination}`)).toEqual([
      '100.64.0.2>192.168.1.0/24',
      '100.64.0.4>10.20.5.0/24',
    ]);
    expect(plan.nat).toMatchObject({ kind: 'WinNAT', internalIPInterfaceAddressPrefix: '100.64.0.0/10' });
    expect(buildWfpGatewayPlan(normalizeGateway(VIRTUAL_DEVICES), LUIDS).unsupported).toHaveLength(2);
  });

  it('needs the LUIDs of the interfaces the policy uses', () => {
    expect(() => buildWfpGatewayPlan(normalizeGateway(ROUTES_MASQ), { mesh: 1n })).toThrow(
      /LAN interface LUID/,
    );
    expect(() => buildWfpGatewayPlan(normalizeGateway(EXIT_NODE), { mesh: 1n })).toThrow(
      /WAN interface LUID/,
    );
    expect(() => buildWfpGatewayPlan(normalizeGateway(EXIT_NODE), { mesh: 'x', wan: 2n })).toThrow(/LUID/);
  });
});
