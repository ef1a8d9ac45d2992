import {
  CompiledPolicy,
  checkPolicy,
  DEFAULT_POLICY_TEXT,
  type PolicyIssue,
  parsePolicy,
} from '@trellis/policy';
import { AccessRules, RouteAccessList } from '@trellis/proto';
import { parse as parseJsonc } from 'jsonc-parser';
import { prng, textMutations } from '../../portmap/test/support/fuzz';
import { FUZZ_CASES, FUZZ_SEED, jsonMutations } from '../../proto/test/support/json-fuzz';
import { device, SAMPLE_DEVICES, SAMPLE_TEXT } from './support/sample';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const RICH: Json = {
  groups: {
    'group:eng': ['laptop-1', 'user:alice@acme.com', 'group:leads'],
    'group:leads': ['user:bob@acme.com', 'cidr:site-b'],
    'group:ops': ['tag:ops', 'tag:cams'],
  },
  tagOwners: { 'tag:cams': ['group:ops'], 'tag:db': ['user:bob@acme.com'], 'tag:ops': [] },
  cidrs: { 'site-a': '100.64.0.0/16', 'site-a-cams': '100.64.8.0/24', 'site-b': '100.65.0.0/16' },
  associations: [
    ['site-a', 'site-b'],
    ['site-a-cams', 'site-a-cams'],
  ],
  rules: [
    { src: ['group:eng'], dst: ['tag:db', 'db'], ports: ['tcp:5432', 'tcp:8000-8100', 'udp:53', 'icmp'] },
    { src: ['group:ops', 'cidr:site-a'], dst: ['tag:cams'], ports: ['tcp', 'udp:1-65535'] },
    { src: ['*'], dst: ['user:carol@acme.com'] },
  ],
  tests: [{ src: 'laptop-1', accept: ['db:5432', 'db:udp/53', 'db:icmp'], deny: ['db:22', 'cam-1:tcp/80'] }],
};
const SAMPLES: Json[] = [parseJsonc(SAMPLE_TEXT) as Json, parseJsonc(DEFAULT_POLICY_TEXT) as Json, RICH];

const DEVICES = [
  ...SAMPLE_DEVICES,
  device('a1', '100.64.0.1', ['tag:cams']),
  device('a-cam', '100.64.8.9', ['tag:cams', 'tag:ops']),
  device('b1', '100.65.3.4', [], 'bob@acme.com'),
  { ...device('gw', '100.100.0.9'), routes: ['192.168.1.0/24', '0.0.0.0/0'] },
];

/** Values that mean something to a policy, for the structure-aware mutations. */
const POOL: Record<string, readonly Json[]> = {
  selector: [
    '*',
    'group:eng',
    'group:nope',
    'group:ops',
    'tag:db',
    'tag:undeclared',
    'cidr:site-a',
    'cidr:nope',
    'user:x@y',
    'user:',
    'laptop-1',
    'Laptop',
    '',
    '__proto__',
    'constructor',
    'name:x',
    `tag:${'a'.repeat(70)}`,
    '192.168.1.0/24',
    '10.0.0.1/8',
    '100.64.0.0/16',
    'autogroup:internet',
    '0.0.0.0/0',
  ],
  port: [
    'tcp:0',
    'tcp:65535',
    'tcp:65536',
    'tcp:90-80',
    'icmp:5',
    'udp:1-65535',
    '*',
    'tcp:1e3',
    'udp: 53',
    'tcp:99999999',
  ],
  cidr: [
    '100.64.0.0/10',
    '100.64.0.0/9',
    '0.0.0.0/0',
    '100.64.0.1/32',
    '100.64.0.0/16',
    '1.2.3.4',
    '100.64.0.0/33',
    '',
  ],
  block: ['site-a', 'site-b', 'site-a-cams', 'nope', ''],
  target: ['db:22', 'db:icmp', 'db:udp/0', 'nobody:22', 'db', ':22', 'db:tcp/65536'],
};

/** Which pool fits the strings under a key. */
const FITS: Record<string, string> = {
  ports: 'port',
  cidrs: 'cidr',
  accept: 'target',
  deny: 'target',
  associations: 'block',
  src: 'selector',
};

/** Mutations that keep the file a policy but aim at the references between its sections. */
function* policyMutations(count: number, seed: number): Generator<string> {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  type Spot = { parent: Json[] | Record<string, Json>; key: string | number; pool: string };
  /** Every string value, with the pool that fits where it sits. */
  const strings = (node: Json, pool: string, out: Spot[] = []): Spot[] => {
    const visit = (parent: Json[] | Record<string, Json>, key: string | number, v: Json, inner: string) => {
      if (typeof v === 'string') out.push({ parent, key, pool: inner });
      else strings(v, inner, out);
    };
    if (Array.isArray(node)) {
      for (const [i, v] of node.entries()) visit(node, i, v, pool);
    } else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) visit(node, k, v, FITS[k] ?? pool);
    }
    return out;
  };
  for (let i = 0; i < count; i++) {
    const root = structuredClone(pick(SAMPLES)) as Record<string, Json>;
    for (let n = 1 + int(2); n > 0; n--) {
      const spots = strings(root, 'selector');
      if (spots.length === 0) break;
      const spot = pick(spots);
      // Mostly a value of the right kind, so many cases get past the schema to the references.
      const pool = POOL[int(5) === 0 ? pick(Object.keys(POOL)) : spot.pool]!;
      (spot.parent as Record<string | number, Json>)[spot.key] = pick(pool);
    }
    if (int(4) === 0) {
      // a cycle through two groups
      const groups = (root.groups ?? {}) as Record<string, Json[]>;
      groups['group:x'] = ['group:y'];
      groups['group:y'] = [int(2) === 0 ? 'group:x' : 'laptop-1'];
      root.groups = groups;
    }
    const text = JSON.stringify(root, null, int(3));
    yield int(2) === 0 ? text : `// policy\n${text.replace('{', '{ /* c */')}`;
  }
}

let cases = 0;

/**
 * Runs checkPolicy (which parses) on a text, and parsePolicy alone on every eighth, to keep the
 * run short; anything thrown, or a result out of shape, fails the case. True when it parsed.
 */
function check(text: string): boolean {
  const checked = checkPolicy(text, DEVICES);
  for (const issue of [...checked.errors, ...checked.warnings]) assertIssue(issue, text);
  if (cases++ % 8 === 0) {
    const parsed = parsePolicy(text);
    for (const issue of parsed.ok ? parsed.warnings : parsed.errors) assertIssue(issue, text);
    if (parsed.ok !== (checked.policy !== undefined)) {
      throw new Error(`parsePolicy and checkPolicy disagree on ${text.slice(0, 200)}`);
    }
  }
  const policy = checked.policy;
  if (!policy) return false;
  if (policy.text !== text) throw new Error('the text was not kept verbatim');
  // What an accepted policy yields must be a valid netmap `access`.
  const compiled = new CompiledPolicy(policy, DEVICES);
  for (const d of [...DEVICES.slice(0, 3), DEVICES[DEVICES.length - 1]!]) {
    for (const g of compiled.peersByAccess(d.id)) {
      const routes = [g.routesIn ?? [], g.routesOut ?? []];
      const rules = [g.in, g.out].every((r) => AccessRules.safeParse(r).success);
      if (!rules || !routes.every((r) => RouteAccessList.safeParse(r).success)) {
        throw new Error(`invalid access ${JSON.stringify(g)} for ${text}`);
      }
    }
  }
  return true;
}

function assertIssue(issue: PolicyIssue, text: string): void {
  const lines = text.split('\n').length;
  const ok =
    typeof issue.message === 'string' &&
    issue.message.length > 0 &&
    Number.isInteger(issue.line) &&
    Number.isInteger(issue.column) &&
    issue.line >= 1 &&
    issue.line <= lines &&
    issue.column >= 1 &&
    Array.isArray(issue.path);
  if (!ok) throw new Error(`malformed issue ${JSON.stringify(issue)} for ${text.slice(0, 200)}`);
}

const share = Math.ceil(FUZZ_CASES / 5);

describe(`policy parsing under fuzzing (${FUZZ_CASES} cases, seed ${FUZZ_SEED})`, () => {
  test('the samples are valid', () => {
    for (const s of SAMPLES) expect(check(JSON.stringify(s))).toBe(true);
    expect(checkPolicy(JSON.stringify(RICH), DEVICES).errors).toEqual([]);
  });

  test('structure mutations of valid policies', () => {
    let accepted = 0;
    SAMPLES.forEach((sample, n) => {
      for (const text of jsonMutations(sample, Math.ceil((2 * share) / SAMPLES.length), FUZZ_SEED + n)) {
        if (check(text)) accepted++;
      }
    });
    expect(accepted).toBeGreaterThan(0);
  });

  test('mutations aimed at references, names, ports and blocks', () => {
    let accepted = 0;
    for (const text of policyMutations(2 * share, FUZZ_SEED + 10)) if (check(text)) accepted++;
    expect(accepted).toBeGreaterThan(0);
  });

  test('raw text mutations of a commented policy', () => {
    let accepted = 0;
    for (const text of textMutations(SAMPLE_TEXT, share, FUZZ_SEED + 20)) if (check(text)) accepted++;
    expect(accepted).toBeGreaterThan(0);
  });

  test('hostile texts', () => {
    for (const text of [
      '',
      '\u0000',
      '{',
      '}',
      '[[[[[[',
      `{"rules": ${'['.repeat(200_000)}`,
      `{"groups": ${'{"a":'.repeat(50_000)}`,
      '/*',
      '{"__proto__": {"rules": []}}',
      '{"constructor": {}}',
      '{"rules": [{"src": ["*"], "dst": ["*"], "ports": ["tcp:1"]}]}'.repeat(3),
      `{"groups": {${Array.from({ length: 1500 }, (_, i) => `"group:g${i}": ["group:g${i + 1}"]`).join(',')}}}`,
      `{"groups": {${Array.from({ length: 900 }, (_, i) => `"group:g${i}": ["group:g${i + 1}"]`).join(',')}, "group:g900": ["x"]}}`,
      'x'.repeat(2_000_000),
    ]) {
      check(text);
    }
  });
});
