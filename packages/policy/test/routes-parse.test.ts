import { autoApproves, checkPolicy, explain, type PolicyDevice, parsePolicy } from '@trellis/policy';
import { EXIT_ROUTE } from '@trellis/proto';
import { policyOf } from './support/compile-helpers';

const gw = (name: string, tags: string[] = [], user?: string): PolicyDevice => ({
  id: `id-${name}`,
  name,
  address: '100.100.0.9',
  tags,
  ...(user === undefined ? {} : { user }),
});

function errorsOf(file: object): string[] {
  const r = parsePolicy(JSON.stringify(file));
  return r.ok ? [] : r.errors.map((e) => `${e.path.join('.')}: ${e.message}`);
}

describe('routed destinations in rules', () => {
  test('a prefix, 0.0.0.0/0, autogroup:internet and * give the rule its routed destinations', () => {
    const p = policyOf({
      tagOwners: { 'tag:db': [] },
      rules: [
        { src: ['*'], dst: ['192.168.1.0/24', 'tag:db', '10.0.0.5/32'], ports: ['tcp:80'] },
        { src: ['*'], dst: ['autogroup:internet'] },
        { src: ['*'], dst: ['0.0.0.0/0', '192.168.1.0/24'] },
        { src: ['*'], dst: ['*'] },
        { src: ['*'], dst: ['tag:db'] },
      ],
    });
    expect(p.rules.map((r) => r.dstRoutes)).toEqual([
      ['10.0.0.5/32', '192.168.1.0/24'],
      ['autogroup:internet'],
      [EXIT_ROUTE, '192.168.1.0/24'],
      [EXIT_ROUTE],
      [],
    ]);
    // A routed destination matches no device: only tag:db stays in the rule's device side.
    expect(p.rules[0]!.dst.flatMap((s) => [...s])).toEqual(['tag:db']);
    expect(p.rules[1]!.dst).toEqual([]);
  });

  test('prefixes are refused as sources, in groups, with host bits or inside the overlay', () => {
    expect(errorsOf({ rules: [{ src: ['192.168.1.0/24'], dst: ['*'] }] })).toEqual([
      expect.stringMatching(/^rules\.0\.src\.0: .*routed destination: only a rule's dst may name one/),
    ]);
    expect(errorsOf({ groups: { 'group:lan': ['10.0.0.0/8'] }, rules: [] })).toEqual([
      expect.stringMatching(/^groups\.group:lan\.0: .*name it in a rule's dst, not in a group/),
    ]);
    expect(errorsOf({ rules: [{ src: ['*'], dst: ['192.168.1.1/24'] }] })).toEqual([
      'rules.0.dst.0: "192.168.1.1/24" must have its host bits clear',
    ]);
    expect(errorsOf({ rules: [{ src: ['*'], dst: ['100.64.0.0/16'] }] })).toEqual([
      'rules.0.dst.0: "100.64.0.0/16" must not overlap the overlay 100.64.0.0/10',
    ]);
    expect(errorsOf({ rules: [{ src: ['*'], dst: ['1.2.3.0/24'] }] })).toEqual([]);
    // A pair's route access lists each destination once, and the wire takes at most 256.
    const many = Array.from({ length: 257 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    expect(errorsOf({ rules: [{ src: ['*'], dst: many.slice(0, 256) }] })).toEqual([]);
    expect(errorsOf({ rules: [{ src: ['*'], dst: many }] })).toEqual([
      'rules.0.dst: more than 256 distinct routed destinations in the policy',
    ]);
  });
});

describe('autoApprovers', () => {
  const file = {
    groups: { 'group:netops': ['user:bob@acme.com'] },
    tagOwners: { 'tag:router': [], 'tag:exit': [] },
    autoApprovers: {
      routes: { '192.168.0.0/16': ['tag:router', 'group:netops'], '10.1.0.0/24': ['user:carl@acme.com'] },
      exitNode: ['tag:exit'],
    },
  };
  const p = policyOf(file);

  test('a prefix within an approved key, for a device its selectors match', () => {
    expect(autoApproves(p, gw('r1', ['tag:router']), '192.168.1.0/24')).toBe(true);
    expect(autoApproves(p, gw('r1', ['tag:router']), '192.168.0.0/16')).toBe(true);
    expect(autoApproves(p, gw('laptop', [], 'Bob@acme.com'), '192.168.7.0/24')).toBe(true);
    expect(autoApproves(p, gw('office-gw', [], 'carl@acme.com'), '10.1.0.128/25')).toBe(true);
    // Wider than the key, another key's device, or nobody's selectors.
    expect(autoApproves(p, gw('r1', ['tag:router']), '192.0.0.0/8')).toBe(false);
    expect(autoApproves(p, gw('r1', ['tag:router']), '10.1.0.0/24')).toBe(false);
    expect(autoApproves(p, gw('other', [], 'carol@acme.com'), '192.168.1.0/24')).toBe(false);
  });

  test('the exit route only through exitNode', () => {
    expect(autoApproves(p, gw('e', ['tag:exit']), EXIT_ROUTE)).toBe(true);
    expect(autoApproves(p, gw('r1', ['tag:router']), EXIT_ROUTE)).toBe(false);
    expect(autoApproves(policyOf({}), gw('e', ['tag:exit']), EXIT_ROUTE)).toBe(false);
  });

  test('bad keys and selectors are located errors; a device name nobody has is a warning', () => {
    expect(
      errorsOf({
        autoApprovers: { routes: { '0.0.0.0/0': ['*'], '10.0.0.1/8': ['*'] }, exitNode: ['group:x'] },
      }),
    ).toEqual([
      expect.stringMatching(/^autoApprovers\.routes\.0\.0\.0\.0\/0: .*exitNode/),
      expect.stringMatching(/^autoApprovers\.routes\.10\.0\.0\.1\/8: .*host bits/),
    ]);
    expect(errorsOf({ autoApprovers: { exitNode: ['group:x', '10.0.0.0/8'] } })).toEqual([
      'autoApprovers.exitNode.0: unknown group "group:x"',
      expect.stringMatching(/^autoApprovers\.exitNode\.1: .*routed destination/),
    ]);
  });

  test('a device name, *, a block, or a group holding a name is no approver: anybody can name a device', () => {
    expect(
      errorsOf({
        groups: { 'group:gw': ['tag:r', 'office-gw'], 'group:ok': ['tag:r', 'user:a@b.c'] },
        tagOwners: { 'tag:r': [] },
        cidrs: { lan: '100.64.0.0/16' },
        autoApprovers: {
          routes: { '10.0.0.0/8': ['office-gw', 'group:ok', 'cidr:lan'] },
          exitNode: ['*', 'group:gw', 'tag:r', 'user:a@b.c'],
        },
      }),
    ).toEqual([
      'autoApprovers.routes.10.0.0.0/8.0: an approver is tag:NAME, group:NAME or user:EMAIL, not "office-gw"',
      'autoApprovers.routes.10.0.0.0/8.2: an approver is tag:NAME, group:NAME or user:EMAIL, not "cidr:lan"',
      'autoApprovers.exitNode.0: an approver is tag:NAME, group:NAME or user:EMAIL, not "*"',
      'autoApprovers.exitNode.1: group:gw holds the device name "office-gw": an approver group holds only users and tags',
    ]);
  });
});

describe('tests and explain with routed addresses', () => {
  const text = JSON.stringify({
    groups: { 'group:eng': ['laptop'] },
    rules: [
      { src: ['group:eng'], dst: ['192.168.1.0/24'], ports: ['tcp:80', 'icmp'] },
      { src: ['*'], dst: ['10.9.0.0/16'], ports: ['udp:53'] },
    ],
    tests: [
      {
        src: 'laptop',
        accept: ['192.168.1.10:80', '192.168.1.10:icmp', '10.9.3.3:udp/53'],
        deny: ['192.168.1.10:22', '192.168.2.1:80'],
      },
      { src: 'phone', deny: ['192.168.1.10:80'], accept: ['10.9.0.1:udp/53'] },
    ],
  });
  const devices = [gw('laptop'), { ...gw('phone'), address: '100.100.0.2' }];

  test('an address outside the overlay is judged against the rules routed destinations', () => {
    const r = checkPolicy(text, devices);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
  });

  test('a failing routed test says what is allowed; an overlay address is refused', () => {
    const failing = text.replace('"deny":["192.168.1.10:22"', '"deny":["192.168.1.10:80"');
    expect(checkPolicy(failing, devices).errors.map((e) => e.message)).toEqual([
      'test failed: laptop -> 192.168.1.10:80 is allowed',
    ]);
    const overlay = JSON.stringify({ tests: [{ src: 'laptop', accept: ['100.64.0.1:80'] }] });
    expect(errorsOf(JSON.parse(overlay))).toEqual([expect.stringMatching(/name the device instead/)]);
  });

  test('explain names the rules that reach a routed address', () => {
    const policy = policyOf(text);
    const e = explain({ policy, devices }, 'laptop', '192.168.1.7', { proto: 'tcp', port: 80 });
    expect(e.allowed).toBe(true);
    expect(e.reasons.map((x) => x.index)).toEqual([0]);
    expect(explain({ policy, devices }, 'phone', '192.168.1.7').allowed).toBe(false);
    expect(explain({ policy, devices }, 'phone', '10.9.1.1', { proto: 'udp', port: 53 }).allowed).toBe(true);
  });
});
