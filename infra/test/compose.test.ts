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
      // The check speaks the PROXY protocol the listener wants (healthz-proxy.js, mounted).
      expect(s.healthcheck.test).toEqual([
        'CMD',
        'node',
        '/opt/trellis/healthz-proxy.js',
        `127.0.0.1:${portOf(flag(args(b), '--listen')!)}`,
      ]);
      expect(s.volumes).toContain('./healthz-proxy.js:/opt/trellis/healthz-proxy.js:ro');
      expect(s.build.dockerfile).toBe('infra/docker/broker.Dockerfile');
      expect(existsSync(join(resolve(DIR, s.build.context), s.build.dockerfile))).toBe(true);
      expect(flag(args(b), '--public-url')).toBe(`https://${ENV.TRELLIS_PUBLIC_NAME}`);
      // Plain HTTP behind HAProxy's PROXY header: the client's address, so the broker's own caps apply.
      expect(args(b)).toEqual(expect.arrayContaining(['--proxy-protocol', '--plain-http']));
      expect(args(b)).not.toContain('--max-connections-per-address');
      // The proxy's certificate, for the fingerprint devices and relays are shown (no key: no TLS here).
      expect(flag(args(b), '--tls-cert')).toBe('/certs/public.crt');
      expect(args(b)).not.toContain('--tls-key');
      expect(s.volumes).toContain('./certs/public.crt:/certs/public.crt:ro');
      // Reachable through HAProxy only: a client reaching it directly could claim any address.
      expect(published(b).filter((p) => p.proto === 'tcp' && p.container !== '5353')).toEqual([]);
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
    const cfg = readFileSync(cfgFile, 'utf8');
    const servers = [...cfg.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)];
    expect(servers.map((m) => m[2])).toEqual(BROKERS);
    for (const m of servers) expect(Number(m[3])).toBe(portOf(flag(args(m[2]!), '--listen')!));
    // What the brokers' --proxy-protocol --plain-http expect: a v2 header, checks included, no TLS.
    expect(cfg).toMatch(/^\s*default-server send-proxy-v2 check check-send-proxy /m);
    expect(cfg).not.toMatch(/^\s*default-server .*\bssl\b/m);
    // The file haproxy.cfg reads is the one mounted (make-certs.sh writes it).
    const mounted = (h.volumes as string[]).map((v) => v.split(':')[1]);
    expect(mounted).toContain(h.environment.TRELLIS_TLS_PEM);
    // The relays reach it by the public name its certificate carries.
    expect(h.networks.default.aliases).toEqual([ENV.TRELLIS_PUBLIC_NAME]);
  });

  it('relays: one token each, own port ranges published as they are, the brokers through HAProxy', () => {
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
      expect(flag(args(r), '--broker')).toBe(`https://${ENV.TRELLIS_PUBLIC_NAME}`);
      expect(flag(args(r), '--ca-file')).toBe('/certs/public.crt');
      expect(services[r]!.volumes).toContain('./certs/public.crt:/certs/public.crt:ro');
      for (const b of BROKERS) healthyAfter(r, b);
      expect(services[r]!.depends_on.haproxy).toEqual({ condition: 'service_started' });
    }
  });

  it('the certificates mounted are the ones make-certs.sh writes', () => {
    const script = readFileSync(join(DIR, 'make-certs.sh'), 'utf8');
    const mounts = Object.values(services).flatMap((s) => (s.volumes ?? []) as string[]);
    for (const m of mounts.filter((v) => v.startsWith('./certs/')))
      expect(script).toContain(`$dir/${m.split(':')[0]!.slice('./certs/'.length)}`);
  });
});
