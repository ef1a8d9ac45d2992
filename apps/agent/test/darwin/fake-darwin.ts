import type { ChildProcess } from 'node:child_process';
import type { CommandResult, CommandRunner, SpawnOptions } from '../../src/util/command-runner';

export interface FakeRoute {
  family: 4 | 6;
  /** CIDR, as the code under test thinks of it. */
  cidr: string;
  gateway: string;
  flags: string;
  netif: string;
  host: boolean;
}

/**
 * The commands macOS's networking is driven by, as far as the darwin parts use them: `ifconfig`,
 * `route -n add|delete|get`, `netstat -rn` (printed the BSD way: `10`, `100.64/10`, `128.0/1`),
 * `scutil --dns` and `networksetup`. Keeps a routing table and the utun addresses, refuses what
 * the kernel refuses (a second route to one destination, deleting one that is absent), and
 * records every command line.
 */
export class FakeDarwin implements CommandRunner {
  readonly calls: string[] = [];
  readonly interfaces = new Map<string, { up: boolean; inet: string[] }>();
  routes: FakeRoute[] = [
    route(4, '0.0.0.0/0', '192.168.1.1', 'UGScg', 'en0'),
    route(4, '127.0.0.0/8', '127.0.0.1', 'UCS', 'lo0'),
    route(4, '127.0.0.1/32', '127.0.0.1', 'UH', 'lo0', true),
    route(4, '169.254.0.0/16', 'link#6', 'UCS', 'en0'),
    route(4, '192.168.1.0/24', 'link#6', 'UCS', 'en0'),
    route(4, '192.168.1.1/32', 'a4:91:b1:1:2:3', 'UHLWIir', 'en0', true),
    // Another VPN's: never touched.
    route(4, '10.200.0.0/16', 'utun2', 'USc', 'utun2'),
    route(4, '172.16.5.0/24', '192.168.1.254', 'UGSc', 'en0'),
    route(6, '::/0', 'fe80::1%en0', 'UGcg', 'en0'),
    route(6, '::1/128', '::1', 'UHL', 'lo0', true),
    route(6, 'fe80::/64', 'link#6', 'UCI', 'en0'),
  ];
  scutilDns = [
    'DNS configuration',
    '',
    'resolver #1',
    '  search domain[0] : lan',
    '  nameserver[0] : 192.168.1.53',
    '  nameserver[1] : 2001:db8::53',
    '  if_index : 6 (en0)',
    '',
    'resolver #2',
    '  domain   : local',
    '  options  : mdns',
    '',
  ].join('\n');
  /** networksetup's services and their own DNS servers ([]: DHCP's). */
  readonly services = new Map<string, string[]>([
    ['Wi-Fi', []],
    ['USB 10/100/1000 LAN', ['9.9.9.9', '149.112.112.112']],
  ]);

  /** Only the changes, not the reads. */
  get changes(): string[] {
    return this.calls.filter(
      (c) => !/^(netstat|route -n get|ifconfig utun\d+$|scutil|networksetup -(get|list))/.test(c),
    );
  }

  /** wireguard-go made a utun. */
  addUtun(name: string): void {
    this.interfaces.set(name, { up: false, inet: [] });
  }

  /** wireguard-go exited: the kernel drops the utun and every route through it. */
  removeUtun(name: string): void {
    this.interfaces.delete(name);
    this.routes = this.routes.filter((r) => r.netif !== name);
  }

  async run(command: string, args: string[]): Promise<CommandResult> {
    this.calls.push([command, ...args].join(' '));
    if (command === 'netstat') return ok(this.netstat(args[2] === 'inet6' ? 6 : 4));
    if (command === 'route') return this.route(args);
    if (command === 'ifconfig') return this.ifconfig(args);
    if (command === 'scutil') return ok(`${this.scutilDns}\n`);
    if (command === 'networksetup') return this.networksetup(args);
    return fail(127, `unknown command ${command}`);
  }

  /** Set by a test that runs wireguard-go or `route -n monitor` through this runner. */
  spawner: ((command: string, args: string[], options: SpawnOptions) => ChildProcess) | null = null;

  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    this.calls.push(`spawn ${options.detached ? 'detached ' : ''}${[command, ...args].join(' ')}`);
    if (!this.spawner) throw new Error('no spawner');
    return this.spawner(command, args, options);
  }

  private netstat(family: 4 | 6): string {
    const lines = ['Routing tables', '', family === 4 ? 'Internet:' : 'Internet6:'];
    lines.push(`${pad('Destination', 19)}${pad('Gateway', 19)}${pad('Flags', 10)}Netif Expire`);
    for (const r of this.routes.filter((x) => x.family === family)) {
      lines.push(`${pad(netstatName(r), 19)}${pad(r.gateway, 19)}${pad(r.flags, 10)}${r.netif}`);
    }
    return `${lines.join('\n')}\n`;
  }

  private route(args: string[]): CommandResult {
    const [n, verb, ...rest] = args;
    if (n !== '-n') return fail(64, 'usage');
    if (verb === 'get') {
      const v6 = rest[0] === '-inet6';
      const dest = v6 ? rest[1] : rest[0];
      if (dest !== 'default') return fail(1, 'fake: only default');
      const d = this.routes.find((r) => r.family === (v6 ? 6 : 4) && r.cidr === (v6 ? '::/0' : '0.0.0.0/0'));
      if (!d) return fail(1, 'route: writing to routing socket: not in table');
      return ok(
        [
          `   route to: default`,
          `destination: default`,
          `       mask: default`,
          `    gateway: ${d.gateway}`,
          `  interface: ${d.netif}`,
          `      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>`,
          '',
        ].join('\n'),
      );
    }
    const family = rest[0] === '-inet6' ? 6 : 4;
    const host = rest[1] === '-host';
    const dest = rest[2]!;
    const cidr = host ? `${dest}/${family === 4 ? 32 : 128}` : dest;
    const at = this.routes.findIndex((r) => r.family === family && r.cidr === cidr);
    if (verb === 'delete') {
      if (at < 0) return fail(1, `route: writing to routing socket: not in table`);
      this.routes.splice(at, 1);
      return ok(`delete ${host ? 'host' : 'net'} ${dest}\n`);
    }
    if (verb !== 'add') return fail(64, 'usage');
    if (at >= 0)
      return fail(1, `route: writing to routing socket: File exists\nadd net ${dest}: gateway: File exists`);
    const more = rest.slice(3);
    let gateway = '';
    let netif = '';
    let flags = 'U';
    if (more[0] === '-interface') {
      netif = more[1]!;
      gateway = netif;
      if (!this.interfaces.has(netif)) return fail(1, `route: bad address: ${netif}`);
    } else {
      gateway = more[0]!;
      flags += 'G';
      netif = gateway === '127.0.0.1' || gateway === '::1' ? 'lo0' : 'en0';
    }
    if (host) flags += 'H';
    if (more.includes('-reject')) flags += 'R';
    flags += 'S';
    if (more.includes('-proto2')) flags += '2';
    this.routes.push({ family, cidr, gateway, flags, netif, host });
    return ok(`add ${host ? 'host' : 'net'} ${dest}\n`);
  }

  private ifconfig(args: string[]): CommandResult {
    const [name, ...rest] = args;
    const i = this.interfaces.get(name!);
    if (!i) return fail(1, `ifconfig: interface ${name} does not exist`);
    if (rest.length === 0) {
      const flags = [...(i.up ? ['UP'] : []), 'POINTOPOINT', ...(i.up ? ['RUNNING'] : []), 'MULTICAST'];
      return ok(
        [
          `${name}: flags=8051<${flags.join(',')}> mtu 1420`,
          ...i.inet.map((a) => `\tinet ${a} --> ${a} netmask 0xffffffff`),
          '',
        ].join('\n'),
      );
    }
    if (rest[0] === 'up') i.up = true;
    else if (rest[0] === 'down') i.up = false;
    else if (rest[0] === 'inet' && rest.at(-1) === 'alias') i.inet.push(rest[1]!);
    else if (rest[0] === 'inet' && rest[2] === '-alias') i.inet = i.inet.filter((a) => a !== rest[1]);
    else return fail(1, `fake ifconfig does not do: ${args.join(' ')}`);
    return ok('');
  }

  private networksetup(args: string[]): CommandResult {
    if (args[0] === '-listallnetworkservices') {
      const names = [...this.services.keys()];
      return ok(
        `An asterisk (*) denotes that a network service is disabled.\n${names.join('\n')}\n*Bluetooth PAN\n`,
      );
    }
    const service = args[1]!;
    const servers = this.services.get(service);
    if (!servers) return fail(4, `${service} is not a recognized network service.`);
    if (args[0] === '-getdnsservers') {
      return ok(
        servers.length ? `${servers.join('\n')}\n` : `There aren't any DNS Servers set on ${service}.\n`,
      );
    }
    if (args[0] === '-setdnsservers') {
      const rest = args.slice(2);
      this.services.set(service, rest[0] === 'empty' ? [] : rest);
      return ok('');
    }
    return fail(1, 'fake networksetup: unknown');
  }
}

export function route(
  family: 4 | 6,
  cidr: string,
  gateway: string,
  flags: string,
  netif: string,
  host = false,
): FakeRoute {
  return { family, cidr, gateway, flags, netif, host };
}

/** netstat's name for a destination: Apple's netname()/domask() for IPv4, `addr/len` for IPv6. */
export function netstatName(r: FakeRoute): string {
  const [addr, lenText] = r.cidr.split('/') as [string, string];
  const len = Number(lenText);
  if (len === 0) return 'default';
  if (r.host) return addr;
  if (r.family === 6) return r.cidr;
  const o = addr.split('.').map(Number) as [number, number, number, number];
  const classLen = o[0] < 128 ? 8 : o[0] < 192 ? 16 : 24;
  let shown: number = o.length;
  if (classLen <= 8 && o[1] === 0 && o[2] === 0 && o[3] === 0) shown = 1;
  else if (classLen <= 16 && o[2] === 0 && o[3] === 0) shown = 2;
  else if (classLen <= 24 && o[3] === 0) shown = 3;
  const text = o.slice(0, shown).join('.');
  return len === classLen ? text : `${text}/${len}`;
}

const pad = (s: string, n: number) => (s.length >= n ? `${s} ` : s.padEnd(n));
const ok = (stdout: string): CommandResult => ({ stdout, stderr: '', code: 0 });
const fail = (code: number, stderr: string): CommandResult => ({ stdout: '', stderr, code });
