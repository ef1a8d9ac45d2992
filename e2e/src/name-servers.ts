import { chownSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from './internet';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';
import { waitFor } from './wait';

/** Where `scripts/lib.sh` unpacks systemd-resolved (ensure_lab_resolved). */
export const LAB_RESOLVED_DIR = '/var/cache/trellis-lab/systemd-resolved';

/**
 * Debian's unbound as a recursive resolver on an internet host: a zone delegated to another
 * server (a stub zone, as a parent zone's NS records would), and local names of its own.
 */
export class UnboundResolver {
  private constructor(
    readonly host: Host,
    private readonly proc: LabProcess,
  ) {}

  static async start(
    host: Host,
    dir: string,
    opts: {
      stubZone: string;
      stubAddress: string;
      localData: Record<string, string>;
      /** Domains it knows to be its own (a LAN's search domain): NXDOMAIN at once, not a recursion. */
      localZones?: readonly string[];
    },
  ): Promise<UnboundResolver> {
    mkdirSync(dir, { recursive: true });
    // The lab has no root servers: names it would have to recurse for would each time out.
    const local = [
      ...(opts.localZones ?? []).map((z) => `  local-zone: "${z}." static`),
      ...Object.entries(opts.localData).flatMap(([name, address]) => {
        const zone = name.split('.').slice(1).join('.');
        return [`  local-zone: "${zone}." static`, `  local-data: "${name}. 60 IN A ${address}"`];
      }),
    ];
    const conf = join(dir, 'unbound.conf');
    writeFileSync(
      conf,
      [
        'server:',
        `  interface: ${host.address}`,
        '  port: 53',
        '  access-control: 0.0.0.0/0 allow',
        '  do-daemonize: no',
        '  do-ip6: no',
        '  username: ""',
        '  chroot: ""',
        `  directory: "${dir}"`,
        `  pidfile: "${join(dir, 'unbound.pid')}"`,
        '  use-syslog: no',
        '  logfile: ""',
        '  verbosity: 1',
        '  module-config: "iterator"',
        `  domain-insecure: "${opts.stubZone}"`,
        ...local,
        'stub-zone:',
        `  name: "${opts.stubZone}"`,
        `  stub-addr: ${opts.stubAddress}`,
        '',
      ].join('\n'),
    );
    await host.ns.exec(['unbound-checkconf', conf]);
    const proc = host.ns.spawn('unbound', ['-d', '-c', conf], { logName: `unbound-${host.name}` });
    const r = new UnboundResolver(host, proc);
    await waitFor(
      async () => {
        const out = await host.ns
          .exec(['dig', '+short', '+time=1', '+tries=1', `@${host.address}`, Object.keys(opts.localData)[0]!])
          .catch(() => null);
        return (out?.stdout.trim() ?? '') !== '';
      },
      { timeoutMs: 20_000, what: 'unbound to answer' },
    );
    return r;
  }

  async stop(): Promise<void> {
    await this.proc.stop(5000);
  }
}

/**
 * A namespace's own /etc/resolv.conf: `ip netns exec` binds /etc/netns/NS/resolv.conf over it for
 * every process started in the namespace after this.
 */
export class NamespaceResolvConf {
  readonly path: string;

  constructor(readonly ns: Namespace) {
    this.path = join('/etc/netns', ns.name, 'resolv.conf');
  }

  write(content: string): void {
    mkdirSync(join('/etc/netns', this.ns.name), { recursive: true });
    writeFileSync(this.path, content);
  }

  /** A symlink, as /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf on a desktop. */
  linkTo(target: string): void {
    mkdirSync(join('/etc/netns', this.ns.name), { recursive: true });
    symlinkSync(target, this.path);
  }

  remove(): void {
    rmSync(join('/etc/netns', this.ns.name), { recursive: true, force: true });
  }
}

const BUS_CONF = (
  socket: string,
) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;

/**
 * Debian's systemd-resolved in one namespace, as on a desktop: its own system bus (dbus-daemon),
 * its stub on 127.0.0.53, run unprivileged with the capabilities its unit file gives it. Its
 * runtime directory (/run/systemd/resolve, where it writes stub-resolv.conf with the search
 * domains) is `runtimeDir` here, mounted there in its own mount namespace only.
 */
export class ResolvedDaemon {
  private constructor(
    readonly ns: Namespace,
    private readonly bus: LabProcess,
    private readonly daemon: LabProcess,
    private readonly socket: string,
    /** resolved's /run/systemd/resolve. */
    readonly runtimeDir: string,
  ) {}

  /** The resolv.conf resolved keeps (stub listener + search domains), to link /etc/resolv.conf to. */
  get stubResolvConf(): string {
    return join(this.runtimeDir, 'stub-resolv.conf');
  }

  static async start(ns: Namespace, dir: string): Promise<ResolvedDaemon> {
    const binary = join(LAB_RESOLVED_DIR, 'lib/systemd/systemd-resolved');
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run scripts/test (ensure_lab_resolved)`);
    mkdirSync(dir, { recursive: true });
    const socket = join(dir, 'system_bus.sock');
    const conf = join(dir, 'bus.conf');
    writeFileSync(conf, BUS_CONF(socket));
    const bus = ns.spawn('dbus-daemon', ['--nofork', '--nopidfile', `--config-file=${conf}`], {
      logName: `dbus-${ns.name}`,
    });
    await waitFor(() => existsSync(socket), { timeoutMs: 10_000, what: 'dbus-daemon socket' });
    const runtimeDir = join(dir, 'run');
    mkdirSync(runtimeDir, { recursive: true });
    chownSync(runtimeDir, 65534, 65534);
    const caps = '+net_bind_service,+net_raw,+setpcap';
    const daemon = ns.spawn(
      'sh',
      [
        '-c',
        'mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/resolve && ' +
          `mount --bind ${runtimeDir} /run/systemd/resolve && ` +
          `exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=${caps} --ambient-caps=${caps} ${binary}`,
      ],
      {
        env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` },
        logName: `resolved-${ns.name}`,
      },
    );
    const r = new ResolvedDaemon(ns, bus, daemon, socket, runtimeDir);
    await waitFor(
      async () => existsSync(r.stubResolvConf) && (await r.resolvectl(['status']).catch(() => null)) !== null,
      {
        timeoutMs: 20_000,
        what: 'systemd-resolved on its bus',
      },
    );
    return r;
  }

  /** What a process needs to reach this resolved: its bus, and `resolvectl` on the PATH. */
  get env(): NodeJS.ProcessEnv {
    return {
      DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${this.socket}`,
      PATH: `${join(LAB_RESOLVED_DIR, 'usr/bin')}:${process.env.PATH ?? ''}`,
    };
  }

  async resolvectl(args: string[]): Promise<string> {
    const { stdout } = await this.ns.exec(['resolvectl', ...args], { env: { ...process.env, ...this.env } });
    return stdout;
  }

  async stop(): Promise<void> {
    await this.daemon.stop(5000);
    await this.bus.stop(5000);
  }
}

/**
 * `dig +short NAME A @SERVER` from `ns`: the IPv4 addresses answered (empty for NXDOMAIN or no
 * answer), or null when the server did not answer at all.
 */
export async function digA(ns: Namespace, server: string, name: string): Promise<string[] | null> {
  const r = await ns
    .exec(['dig', '+short', '+time=1', '+tries=1', `@${server}`, name, 'A'], { timeoutMs: 10_000 })
    .catch(() => null);
  if (!r || /connection timed out|no servers could be reached/.test(r.stdout)) return null;
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
}
