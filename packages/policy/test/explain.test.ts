import { CompiledPolicy, explain } from '@trellis/policy';
import { policyOf } from './support/compile-helpers';
import { device, SAMPLE_DEVICES, SAMPLE_TEXT } from './support/sample';

const TEXT = `{
  "tagOwners": { "tag:db": [] },
  "cidrs": { "site-a": "100.64.0.0/16", "site-b": "100.65.0.0/16" },
  "associations": [["site-a", "site-b"]],
  "rules": [
    { "src": ["laptop"], "dst": ["tag:db"], "ports": ["tcp:5432"] },
    { "src": ["*"], "dst": ["tag:db"], "ports": ["icmp", "tcp:5000-6000"] },
    { "src": ["laptop"], "dst": ["printer"] }
  ]
}`;
const laptop = device('laptop', '100.100.0.1');
const db = device('db', '100.100.0.2', ['tag:db']);
const printer = device('printer', '100.100.0.3');
const a1 = device('a1', '100.64.0.1');
const a2 = device('a2', '100.64.0.2');
const b1 = device('b1', '100.65.0.1');
const devices = [laptop, db, printer, a1, a2, b1];
const policy = policyOf(TEXT);
const compiled = new CompiledPolicy(policy, devices);

describe('explain', () => {
  test('every rule that allows a port, with its line and text', () => {
    const r = explain(compiled, 'laptop', 'db', { proto: 'tcp', port: 5432 });
    expect(r).toEqual({
      allowed: true,
      reasons: [
        {
          kind: 'rule',
          index: 0,
          line: 6,
          text: '{ "src": ["laptop"], "dst": ["tag:db"], "ports": ["tcp:5432"] }',
        },
        {
          kind: 'rule',
          index: 1,
          line: 7,
          text: '{ "src": ["*"], "dst": ["tag:db"], "ports": ["icmp", "tcp:5000-6000"] }',
        },
      ],
    });
  });

  test('only the rules covering the target count', () => {
    expect(explain(compiled, 'laptop', 'db', { proto: 'icmp' }).reasons.map((x) => x.index)).toEqual([1]);
    expect(explain(compiled, 'laptop', 'db', { proto: 'tcp', port: 22 })).toEqual({
      allowed: false,
      reasons: [],
    });
    expect(explain(compiled, 'laptop', 'db', { proto: 'udp' }).allowed).toBe(false);
    expect(explain(compiled, 'laptop', 'db', { proto: 'tcp' }).reasons).toHaveLength(2);
    expect(explain(compiled, 'laptop', 'db').reasons).toHaveLength(2);
  });

  test('direction matters', () => {
    expect(explain(compiled, 'db', 'laptop').allowed).toBe(false);
    expect(explain(compiled, 'printer', 'db', { proto: 'tcp', port: 4999 }).allowed).toBe(false);
    expect(explain(compiled, 'printer', 'db', { proto: 'tcp', port: 5999 }).allowed).toBe(true);
  });

  test('blocks and associations are reasons too', () => {
    expect(explain(compiled, 'a1', 'a2', { proto: 'udp', port: 9 })).toEqual({
      allowed: true,
      reasons: [{ kind: 'cidr', line: 3, text: 'both in block "site-a" (100.64.0.0/16), which sees itself' }],
    });
    expect(explain(compiled, 'b1', 'a2')).toEqual({
      allowed: true,
      reasons: [{ kind: 'association', index: 0, line: 4, text: '["site-a", "site-b"]' }],
    });
  });

  test('ids work as names, and a policy with a device list works like a compiled one', () => {
    const byId = explain({ policy, devices }, laptop.id, printer.id, { proto: 'tcp', port: 1 });
    expect(byId).toEqual(explain(compiled, 'laptop', 'printer', { proto: 'tcp', port: 1 }));
    expect(byId.reasons.map((x) => x.index)).toEqual([2]);
  });

  test('unknown devices and a device on itself', () => {
    expect(explain(compiled, 'ghost', 'db')).toEqual({ allowed: false, reasons: [], missing: ['ghost'] });
    expect(explain(compiled, 'laptop', 'laptop')).toEqual({ allowed: false, reasons: [] });
  });

  test('agrees with access() on the sample', () => {
    const p = new CompiledPolicy(policyOf(SAMPLE_TEXT), SAMPLE_DEVICES);
    for (const a of SAMPLE_DEVICES) {
      for (const b of SAMPLE_DEVICES) {
        expect(explain(p, a.id, b.id).allowed).toBe((p.access(a.id, b.id)?.out.length ?? 0) > 0);
      }
    }
  });
});

describe('explain: addresses behind gateways', () => {
  const text = `{
    "rules": [
      { "src": ["laptop"], "dst": ["autogroup:internet"], "ports": ["tcp:443"] },
      { "src": ["printer"], "dst": ["192.168.1.0/24"], "ports": ["tcp:80"] }
    ]
  }`;
  const p = new CompiledPolicy(policyOf(text), devices);

  test('autogroup:internet covers internet addresses only, never a private or special one', () => {
    expect(explain(p, 'laptop', '8.8.8.8', { proto: 'tcp', port: 443 }).allowed).toBe(true);
    for (const a of ['192.168.1.5', '10.1.2.3', '172.16.0.1', '100.64.9.9', '169.254.1.1', '224.0.0.1']) {
      expect(explain(p, 'laptop', a, { proto: 'tcp', port: 443 }).allowed).toBe(false);
    }
  });

  test('a subnet rule covers its prefix only', () => {
    expect(explain(p, 'printer', '192.168.1.5', { proto: 'tcp', port: 80 }).allowed).toBe(true);
    expect(explain(p, 'printer', '192.168.2.5', { proto: 'tcp', port: 80 }).allowed).toBe(false);
    expect(explain(p, 'printer', '8.8.8.8', { proto: 'tcp', port: 80 }).allowed).toBe(false);
  });
});
