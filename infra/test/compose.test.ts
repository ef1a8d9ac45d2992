import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Doc, flag, INFRA, portOf, readYaml } from './helpers';

const DIR = join(INFRA, 'compose');
const FILE = join(DIR, 'compose.yaml');

/** KEY=VALUE lines of .env.example: what a filled-in .env looks like. */
const ENV: Record<string, string> = Object.fromEntries(
  readFileSync(join(DIR, '.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_0-9]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` in every string. */
function interpolate(node: Doc): Doc {
  if (typeof node === 'string')
    return node.replace(
      /\$\{([A-Z_0-9]+)(?::([-?])([^}]*))?\}/g,
      (_m, name: string, op?: string, arg?: string) => {
        const v = ENV[name];
        if (v) return v;
        if (op === '?') throw new Error(`${name} is required: ${arg}`);
        return op === '-' ? (arg ?? '') : '';
      },
    );
  if (Array.isArray(node)) return node.map(interpolate);
  if (node && typeof node === 'object')
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolate(v)]));
  return node;
}

const compose = interpolate(readYaml(FILE)[0]);
const services: Record<string, Doc> = compose.services;
const BROKERS = ['broker1', 'broker2', 'broker3'];
const RELAYS = ['relay1', 'relay2'];
const args = (name: string): string[] => services[name]!.command;
const healthyAfter = (name: string, dep: string) =>
  expect(services[name]!.depends_on[dep]).toEqual({ condition: 'service_healthy' });
/** Host side of a published port: "H:C/proto" or "IP:H:C/proto" (ranges: "A-B:A-B/udp"). */
const published = (name: string) =>
  (services[name]!.ports as string[]).map((p) => {
    const m = /^(?:[\d.]+:)?([\d-]+):([\d-]+)(?:\/(tcp|udp))?$/.exec(p);
    if (!m) throw new Error(`${name}: cannot read port ${p}`);
    return { host: m[1]!, container: m[2]!, proto: m[3] ?? 'tcp' };
  });

describe('compose file (infra/compose/compose.yaml)', () => {
  it('runs PostgreSQL, three brokers, HAProxy and two relays', () => {
    expect(Object.keys(services).sort()).toEqual(['haproxy', 'postgres', ...BROKERS, ...RELAYS].sort());
    expect(services.postgres.healthcheck.test).toEqual(expect.arrayContaining(['pg_isready']));
  });

  it('the brokers share PostgreSQL, wait for it, and are healthy on /healthz', () => {
    for (const b of BROKERS) {
      const s = services[b]!;
      const url = new URL(s.environment.DATABASE_URL);
      expect(url.protocol).toBe('postgresql:');
      expect(url.hostname).toBe('postgres');
      expect(url.username).toBe(services.postgres.environment.POSTGRES_USER);
      expect(url.password).toBe(services.postgres.environment.POSTGRES_PASSWORD);
      expect(url.pathname).toBe(`/${services.postgres.environment.POSTGRES_DB}`);
      healthyAfter(b, 'postgres');
      expect(s.healthcheck.test.join(' ')).toContain(`:${portOf(flag(args(b), '--listen')!)}/healthz`);
      expect(s.build.dockerfile).toBe('infra/docker/broker.Dockerfile');
      expect(existsSync(join(resolve(DIR, s.build.context), s.build.dockerfile))).toBe(true);
      expect(flag(args(b), '--public-url')).toBe(`https://${ENV.TRELLIS_PUBLIC_NAME}`);
      // Behind the proxy every connection has HAProxy's address: the cap is HAProxy's.
      expect(flag(args(b), '--max-connections-per-address')).toBe('0');
    }
    // One broker creates the first account alone; the others start once it is healthy.
    healthyAfter('broker2', 'broker1');
    healthyAfter('broker3', 'broker1');
  });

  it("each broker's reflector is published on its own UDP port, announced at the public address", () => {
    const ports = BROKERS.map((b) => Number(flag(args(b), '--reflector-port')));
    expect(new Set(ports).size).toBe(BROKERS.length);
    BROKERS.forEach((b, i) => {
      expect(flag(args(b), '--reflector-host')).toBe(ENV.TRELLIS_PUBLIC_IP);
      expect(published(b)).toContainEqual({ host: `${ports[i]}`, container: `${ports[i]}`, proto: 'udp' });
    });
    const dns = portOf(flag(args('broker1'), '--dns-listen')!);
    expect(published('broker1')).toContainEqual({ host: '53', container: `${dns}`, proto: 'udp' });
  });

  it('HAProxy fronts exactly the brokers on 443, after they are healthy, with the repo config', () => {
    const h = services.haproxy;
    expect(published('haproxy')).toEqual([{ host: '443', container: '443', proto: 'tcp' }]);
    for (const b of BROKERS) healthyAfter('haproxy', b);
    const cfgMount = (h.volumes as string[]).find((v) =>
      v.endsWith(':/usr/local/etc/haproxy/haproxy.cfg:ro'),
    )!;
    const cfgFile = resolve(DIR, cfgMount.split(':')[0]!);
    expect(cfgFile).toBe(join(INFRA, 'haproxy', 'haproxy.cfg'));
    const servers = [...readFileSync(cfgFile, 'utf8').matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)];
    expect(servers.map((m) => m[2])).toEqual(BROKERS);
    for (const m of servers) expect(Number(m[3])).toBe(portOf(flag(args(m[2]!), '--listen')!));
    // The files haproxy.cfg reads are the ones mounted (make-certs.sh writes them).
    const mounted = (h.volumes as string[]).map((v) => v.split(':')[1]);
    expect(mounted).toEqual(
      expect.arrayContaining([h.environment.TRELLIS_TLS_PEM, h.environment.TRELLIS_BACKEND_CA]),
    );
  });

  it('relays: one token each, own port ranges published as they are, broker URLs of the instances', () => {
    const raw = readYaml(FILE)[0].services;
    const tokens = RELAYS.map((r) => raw[r].environment.TRELLIS_RELAY_TOKEN as string);
    expect(tokens.every((t) => /^\$\{TRELLIS_RELAY_TOKEN_\w+/.test(t))).toBe(true);
    expect(new Set(tokens).size).toBe(RELAYS.length);
    const ranges = RELAYS.map((r) => flag(args(r), '--ports')!);
    expect(new Set(ranges).size).toBe(RELAYS.length);
    for (const [i, r] of RELAYS.entries()) {
      const ports = published(r);
      expect(ports).toContainEqual({ host: ranges[i], container: ranges[i], proto: 'udp' });
      const tcp = portOf(flag(args(r), '--tcp-listen')!);
      const pub = portOf(flag(args(r), '--tcp-public-url')!);
      expect(ports).toContainEqual({ host: `${pub}`, container: `${tcp}`, proto: 'tcp' });
      const refl = flag(args(r), '--reflector-port')!;
      expect(ports).toContainEqual({ host: refl, container: refl, proto: 'udp' });
      expect(flag(args(r), '--public-address')).toBe(ENV.TRELLIS_PUBLIC_IP);
      const brokers = flag(args(r), '--broker')!
        .split(',')
        .map((u) => new URL(u));
      expect(brokers.map((u) => u.hostname).sort()).toEqual(BROKERS);
      for (const b of BROKERS) healthyAfter(r, b);
    }
  });

  it('the certificates mounted are the ones make-certs.sh writes', () => {
    const script = readFileSync(join(DIR, 'make-certs.sh'), 'utf8');
    const mounts = Object.values(services).flatMap((s) => (s.volumes ?? []) as string[]);
    for (const m of mounts.filter((v) => v.startsWith('./certs/')))
      expect(script).toContain(`$dir/${m.split(':')[0]!.slice('./certs/'.length)}`);
  });
});
