/**
 * A realistic account for the policy benchmark, the same for every run of a given size (seeded):
 * ~50 tags (30 roles, 5 environments, 15 sites), 20 groups of tags (a few with users, device names
 * or nested groups), 13 CIDR blocks (one nested, four associations) holding ~15% of the devices,
 * and 1,000 rules over groups, tags, blocks, device names and users with ports and port ranges.
 * Each device has a role tag, often an environment, sometimes a site: 1-3 tags.
 */
import type { PolicyDevice } from '@trellis/policy';

/** mulberry32: small, fast, and the same sequence on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'server' | 'physical' | 'personal';
/** Role tag, share of the fleet (%), kind, and the blocks its devices are enrolled into (with chance). */
const ROLE_TABLE: Array<[string, number, Kind, Array<[string, number]>?]> = [
  ['laptop', 14, 'personal', [['guest', 0.05]]],
  ['phone', 8, 'personal', [['guest', 0.3]]],
  [
    'desktop',
    6,
    'personal',
    [
      ['office-berlin', 0.2],
      ['office-paris', 0.15],
      ['office-nyc', 0.15],
    ],
  ],
  [
    'devbox',
    3,
    'personal',
    [
      ['lab-a', 0.15],
      ['lab-b', 0.15],
    ],
  ],
  ['web', 8, 'server', [['dmz', 0.2]]],
  ['api', 7, 'server', [['dmz', 0.2]]],
  ['worker', 7, 'server'],
  ['db', 4, 'server'],
  ['cache', 3, 'server'],
  ['queue', 2, 'server'],
  ['k8s-node', 6, 'server', [['k8s-pods', 0.5]]],
  ['k8s-ctl', 0.5, 'server'],
  ['ci', 2, 'server'],
  ['build', 2, 'server'],
  ['monitor', 0.5, 'server'],
  ['logs', 1, 'server'],
  ['metrics', 1, 'server'],
  ['vpn', 0.3, 'server', [['dmz-core', 0.5]]],
  ['bastion', 0.3, 'server', [['dmz-core', 0.5]]],
  ['dns', 0.4, 'server'],
  ['mail', 0.3, 'server', [['dmz', 0.5]]],
  ['git', 0.3, 'server'],
  ['registry', 0.4, 'server'],
  ['storage', 2, 'server'],
  ['backup', 1, 'server'],
  [
    'printer',
    2,
    'physical',
    [
      ['office-berlin', 0.3],
      ['office-paris', 0.25],
      ['office-nyc', 0.25],
    ],
  ],
  [
    'camera',
    4,
    'physical',
    [
      ['iot-floor1', 0.25],
      ['iot-floor2', 0.25],
      ['factory-1', 0.1],
    ],
  ],
  [
    'kiosk',
    1,
    'physical',
    [
      ['office-nyc', 0.2],
      ['factory-1', 0.15],
      ['factory-2', 0.15],
    ],
  ],
  [
    'iot',
    6,
    'physical',
    [
      ['iot-floor1', 0.25],
      ['iot-floor2', 0.25],
      ['factory-2', 0.2],
    ],
  ],
  [
    'lab',
    2,
    'physical',
    [
      ['lab-a', 0.35],
      ['lab-b', 0.35],
    ],
  ],
];
const ROLES = ROLE_TABLE.map(([r]) => `tag:${r}`);
const ENVS = ['prod', 'staging', 'dev', 'test', 'qa'].map((e) => `tag:${e}`);
const SITES = Array.from({ length: 15 }, (_, i) => `tag:site-${String(i + 1).padStart(2, '0')}`);
export const ALL_TAGS = [...ROLES, ...ENVS, ...SITES];

const GROUP_NAMES = [
  'admins',
  'ops',
  'devs',
  'sre',
  'data',
  'sec',
  'frontend',
  'backend',
  'storage-tier',
  'observability',
  'infra',
  'prod-all',
  'staging-all',
  'edge',
  'office',
  'iot-all',
  'ci-cd',
  'k8s',
  'dba',
  'support',
].map((g) => `group:${g}`);

const USERS = Array.from({ length: 30 }, (_, i) => `u${i}@example.com`);

/** Named blocks, /22 each, outside where addresses are handed out sequentially (100.64.x). */
const BLOCK_NAMES = [
  'lab-a',
  'lab-b',
  'factory-1',
  'factory-2',
  'dmz',
  'office-berlin',
  'office-paris',
  'office-nyc',
  'k8s-pods',
  'guest',
  'iot-floor1',
  'iot-floor2',
];
export interface GenBlock {
  name: string;
  cidr: string;
  /** Address of its n-th device (part 1 only; the broker allocates its own). */
  first: number;
}
const ipv4 = (a: number, b: number, c: number) => ((a << 24) | (b << 16) | (c << 8)) >>> 0;
const BLOCKS: GenBlock[] = [
  ...BLOCK_NAMES.map((name, i) => ({ name, cidr: `100.96.${i * 4}.0/22`, first: ipv4(100, 96, i * 4) })),
  // A /24 inside dmz: its devices are in both.
  { name: 'dmz-core', cidr: '100.96.16.0/24', first: ipv4(100, 96, 16) },
];
/** Devices a block gets at most (a /22 less dmz-core's /24); the rest of a role's share stays outside. */
const BLOCK_CAPACITY = 700;
const ASSOCIATIONS: Array<[string, string]> = [
  ['office-berlin', 'office-paris'],
  ['office-paris', 'office-nyc'],
  ['lab-a', 'lab-b'],
  ['factory-1', 'factory-2'],
];

const TCP_PORTS = [
  22, 53, 80, 443, 389, 636, 1433, 1521, 2049, 2379, 3000, 3306, 3389, 4222, 5000, 5432, 5601, 5672, 6379,
  6443, 7000, 8080, 8443, 8500, 9000, 9090, 9092, 9100, 9200, 9300, 10250, 11211, 15672, 27017,
].map((p) => `tcp:${p}`);
const TCP_RANGES = [
  '8000-8100',
  '9000-9099',
  '30000-32767',
  '6000-6010',
  '5900-5910',
  '7000-7100',
  '2380-2381',
  '10000-10100',
  '50000-50100',
  '4000-4010',
].map((r) => `tcp:${r}`);
const UDP = [
  53,
  67,
  123,
  161,
  500,
  514,
  1194,
  4500,
  5353,
  51820,
  '5000-5100',
  '60000-61000',
  '10000-20000',
].map((p) => `udp:${p}`);

export interface GenDevice {
  name: string;
  tags: string[];
  /** The block whose setup key enrolls it, if any. */
  block?: string;
  user?: string;
}

export interface GenRule {
  src: string[];
  dst: string[];
  ports?: string[];
}

export interface GeneratedAccount {
  devices: GenDevice[];
  blocks: GenBlock[];
  groups: Record<string, string[]>;
  rules: GenRule[];
}

export interface GenOptions {
  devices: number;
  rules: number;
  /** Give personal devices a user (the broker bench enrolls with the operator's keys: no users). */
  users: boolean;
  seed?: number;
}

export function generateAccount(o: GenOptions): GeneratedAccount {
  const r = rng(o.seed ?? 20_240_601);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const total = ROLE_TABLE.reduce((a, [, w]) => a + w, 0);
  const pickRole = () => {
    let x = r() * total;
    for (const row of ROLE_TABLE) {
      x -= row[1];
      if (x <= 0) return row;
    }
    return ROLE_TABLE[ROLE_TABLE.length - 1]!;
  };
  const blocks = BLOCKS;
  const inBlock = new Map<string, number>();
  const devices: GenDevice[] = [];
  for (let i = 0; i < o.devices; i++) {
    const [role, , kind, where] = pickRole();
    const tags = [`tag:${role}`];
    // Servers carry an environment and sometimes their datacenter; things on a floor, their site;
    // personal devices their role alone (and belong to a user).
    if (kind === 'server') {
      if (r() < 0.85) tags.push(pick(ENVS));
      if (r() < 0.25) tags.push(pick(SITES.slice(0, 4)));
    } else if (kind === 'physical') {
      if (r() < 0.9) tags.push(pick(SITES));
      if (r() < 0.1) tags.push('tag:test');
    } else if (role === 'devbox' && r() < 0.5) tags.push('tag:dev');
    const d: GenDevice = { name: `dev-${i}`, tags };
    let x = r();
    for (const [block, p] of where ?? []) {
      x -= p;
      if (x > 0) continue;
      if ((inBlock.get(block) ?? 0) < BLOCK_CAPACITY) {
        d.block = block;
        inBlock.set(block, (inBlock.get(block) ?? 0) + 1);
      }
      break;
    }
    if (o.users && kind === 'personal') d.user = pick(USERS);
    devices.push(d);
  }

  const named = () => `dev-${Math.floor(r() * o.devices)}`;
  const groups: Record<string, string[]> = {};
  GROUP_NAMES.forEach((g, gi) => {
    if (g === 'group:admins') {
      groups[g] = ['user:admin@example.com', 'user:u0@example.com'];
      return;
    }
    const members = new Set<string>();
    const n = 2 + Math.floor(r() * 4);
    while (members.size < n) members.add(r() < 0.7 ? pick(ROLES) : r() < 0.5 ? pick(ENVS) : pick(SITES));
    if (r() < 0.2) members.add(`user:${pick(USERS)}`);
    if (gi % 7 === 3) members.add(named());
    // Nesting only on groups defined earlier: no cycles.
    if (gi > 2 && r() < 0.25) members.add(GROUP_NAMES[1 + Math.floor(r() * (gi - 1))]!);
    groups[g] = [...members];
  });

  const selector = (): string => {
    const x = r();
    if (x < 0.45) return pick(GROUP_NAMES.slice(1));
    if (x < 0.8) return pick(ALL_TAGS);
    if (x < 0.9) return `cidr:${pick(blocks).name}`;
    if (x < 0.92) return named();
    return `user:${pick(USERS)}`;
  };
  const side = () => [...new Set(Array.from({ length: r() < 0.7 ? 1 : 2 }, selector))];
  const rules: GenRule[] = [
    // What every fleet has: DNS and NTP for everyone, monitoring scrapes everything.
    { src: ['*'], dst: ['tag:dns'], ports: ['udp:53', 'tcp:53'] },
    { src: ['*'], dst: ['tag:metrics'], ports: ['udp:123'] },
    { src: ['tag:monitor'], dst: ['*'], ports: ['tcp:9100', 'icmp'] },
  ];
  while (rules.length < o.rules) {
    // Mostly named ports; a few rules open a whole protocol, fewer still everything.
    const x = r();
    let ports: string[] | undefined;
    if (x < 0.93) {
      const specs = new Set<string>();
      const n = 1 + Math.floor(r() * 3);
      while (specs.size < n) {
        const y = r();
        specs.add(y < 0.6 ? pick(TCP_PORTS) : y < 0.8 ? pick(TCP_RANGES) : y < 0.95 ? pick(UDP) : 'icmp');
      }
      ports = [...specs];
    } else if (x < 0.98) {
      ports = r() < 0.5 ? ['tcp', 'icmp'] : ['udp'];
    }
    rules.push({ src: side(), dst: side(), ...(ports ? { ports } : {}) });
  }
  return { devices, blocks, groups, rules: rules.slice(0, o.rules) };
}

/** The policy file: JSON with comments, as a person would keep it. */
export function policyText(a: GeneratedAccount, extraRules: GenRule[] = []): string {
  const tagOwners = Object.fromEntries(ALL_TAGS.map((t) => [t, ['group:admins']]));
  const cidrs = Object.fromEntries(a.blocks.map((b) => [b.name, b.cidr]));
  const rule = (x: GenRule) => `    ${JSON.stringify(x)}`;
  return [
    '// Generated by `pnpm bench policy`: a fleet of roles, environments and sites.',
    '{',
    `  "groups": ${JSON.stringify(a.groups, null, 2).replace(/\n/g, '\n  ')},`,
    '  // Only admins tag devices.',
    `  "tagOwners": ${JSON.stringify(tagOwners)},`,
    `  "cidrs": ${JSON.stringify(cidrs)},`,
    `  "associations": ${JSON.stringify(ASSOCIATIONS)},`,
    '  "rules": [',
    [...a.rules, ...extraRules].map(rule).join(',\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

const intToIpv4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/**
 * Devices as the policy sees them, with addresses as a broker would hand them out: inside the
 * device's block (dmz's own devices skip dmz-core's /24), elsewhere sequentially from 100.64.0.1.
 */
export function policyDevices(a: GeneratedAccount): PolicyDevice[] {
  const base = (100 << 24) | (64 << 16);
  const used = new Map<string, number>();
  let next = 1;
  return a.devices.map((d, i) => {
    let address: string;
    if (d.block) {
      const b = a.blocks.find((x) => x.name === d.block)!;
      let k = (used.get(b.name) ?? 0) + 1;
      if (b.name === 'dmz') k = Math.max(k, 257); // past dmz-core
      used.set(b.name, k);
      address = intToIpv4((b.first + k) >>> 0);
    } else {
      if ((next & 255) === 0 || (next & 255) === 255) next += 2;
      address = intToIpv4((base + next++) >>> 0);
    }
    return {
      id: `d${i}`,
      name: d.name,
      address,
      tags: d.tags,
      ...(d.user ? { user: d.user } : {}),
    };
  });
}

/** The default allow-all policy (as a new account has it). */
export { DEFAULT_POLICY_TEXT } from '@trellis/policy';
