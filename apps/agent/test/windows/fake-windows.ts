import type { ChildProcess } from 'node:child_process';
import { POWERSHELL, scriptOf } from '../../src/platform/powershell';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';
import { FakeAcls } from './fake-acl';

export interface FakeIface {
  alias: string;
  ifIndex: number;
  /** The IPv4 interface metric. */
  metric: number;
  v6: boolean;
  dadTransmits: number;
  addresses: Array<{ address: string; prefixLength: number; origin: string }>;
  suffix: string;
  register: boolean;
  dns: string[];
}
export interface FakeRoute {
  prefix: string;
  nextHop: string;
  metric: number;
  ifIndex: number;
  /** A persistent-store copy (read only without `-PolicyStore ActiveStore`); absent: the active store. */
  store?: 'PersistentStore';
}
export interface FakeNrpt {
  name: string;
  namespaces: string[];
  servers: string[];
  comment: string;
}

const QUOTED = /'((?:[^']|'')*)'/g;
const unquote = (s: string) => s.slice(1, -1).replace(/''/g, "'");
const ok = (stdout = ''): CommandResult => ({ stdout, stderr: '', code: 0 });
const fail = (stderr: string): CommandResult => ({ stdout: '', stderr, code: 1 });

/**
 * Windows as the scripts of platform/windows.ts, resolver-windows.ts and exit/windows.ts see it:
 * adapters, routes (active store), NRPT rules and the console user. Read scripts are answered from
 * the model in the JSON the real script prints; change scripts are applied line by line, each line
 * parsed as the cmdlet call it is, and a line it does not know fails the script (so no command goes
 * untested). Every command is recorded with its decoded script, for golden files.
 */
export class FakeWindows implements CommandRunner {
  readonly calls: Array<{ command: string; args: string[]; script: string | null }> = [];
  readonly ifaces: FakeIface[] = [];
  routes: FakeRoute[] = [];
  nrpt: FakeNrpt[] = [];
  gpoNrpt = false;
  consoleUser: { user: string; sid: string } | null = null;
  cacheClears = 0;
  /** Change lines matching it fail, as Windows refusing them. */
  failOn: RegExp | null = null;
  /** Directory ACLs icacls changes and Get-Acl reads. */
  readonly acls = new FakeAcls();
  private nextRule = 1;

  iface(alias: string): FakeIface | undefined {
    return this.ifaces.find((i) => i.alias === alias);
  }

  addIface(alias: string, ifIndex: number, extra: Partial<FakeIface> = {}): FakeIface {
    const i: FakeIface = {
      alias,
      ifIndex,
      metric: 25,
      v6: true,
      dadTransmits: 1,
      addresses: [],
      suffix: '',
      register: true,
      dns: [],
      ...extra,
    };
    this.ifaces.push(i);
    return i;
  }

  /** The adapter is removed (and Windows drops its routes and addresses with it). */
  removeIface(alias: string): void {
    const i = this.iface(alias);
    if (!i) return;
    this.ifaces.splice(this.ifaces.indexOf(i), 1);
    this.routes = this.routes.filter((r) => r.ifIndex !== i.ifIndex);
  }

  /** The commands as a golden file shows them: argv, and each script's lines indented. */
  transcript(): string {
    return this.calls
      .map((c) =>
        c.script === null
          ? `$ ${[c.command, ...c.args].join(' ')}`
          : `$ ${c.command} -EncodedCommand\n${c.script.replace(/\n$/, '').replace(/^/gm, '  | ')}`,
      )
      .join('\n')
      .concat('\n');
  }

  /** Only the scripts that change something (not the reads). */
  changes(): string[] {
    return this.calls.map((c) => c.script ?? '').filter((s) => s !== '' && !s.includes('ConvertTo-Json'));
  }

  async run(command: string, args: string[]): Promise<CommandResult> {
    const script = command === POWERSHELL ? scriptOf(args) : null;
    this.calls.push({ command, args, script });
    if (command === 'icacls') return this.acls.icacls(args);
    if (script === null) return fail(`fake windows does not run ${command}`);
    return this.runScript(script);
  }

  spawn(): ChildProcess {
    throw new Error('not used (network-events-windows.test.ts brings its own child)');
  }

  private runScript(s: string): CommandResult {
    const alias = () => {
      const m = /-InterfaceAlias ('(?:[^']|'')*')/.exec(s);
      return m ? unquote(m[1]!) : '';
    };
    if (s.startsWith('$acl = Get-Acl -LiteralPath ')) {
      return ok(JSON.stringify(this.acls.read(unquote(/^\$acl = Get-Acl -LiteralPath (.+)$/m.exec(s)![1]!))));
    }
    if (s.startsWith("$g = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0'")) {
      const gateways = this.routesRead(s.split('\n')[0]!)
        .filter((r) => r.prefix === '0.0.0.0/0')
        .sort((a, b) => a.metric - b.metric)
        .map((r) => r.nextHop);
      return ok(
        JSON.stringify({ gateways, dns: this.ifaces.flatMap((i) => i.dns.filter((d) => !d.includes(':'))) }),
      );
    }
    if (s.includes('Where-Object { $_.RouteMetric -eq 117 }')) return ok(JSON.stringify(this.exitState(s)));
    if (s.includes('$a = @(Get-NetIPAddress')) {
      const i = this.iface(alias());
      if (!i)
        return fail(
          `Get-NetIPInterface : No MSFT_NetIPInterface objects found with property 'InterfaceAlias' equal to '${alias()}'.`,
        );
      const routes = this.routesRead(s).filter((r) => r.ifIndex === i.ifIndex && !r.prefix.includes(':'));
      return ok(
        JSON.stringify({ ifIndex: i.ifIndex, dadTransmits: i.dadTransmits, addresses: i.addresses, routes }),
      );
    }
    if (s.includes('$r = @(Get-NetRoute -AddressFamily IPv4')) {
      const routes = this.routesRead(s).filter((r) => !r.prefix.includes(':'));
      return ok(JSON.stringify({ ifIndex: this.iface(alias())?.ifIndex ?? null, routes }));
    }
    if (s.includes('$r = @(Get-DnsClientNrptRule')) {
      const marker = unquote(/\$_\.Comment -eq ('(?:[^']|'')*')/.exec(s)![1]!);
      const rules = this.nrpt
        .filter((r) => r.comment === marker)
        .map(({ name, namespaces, servers }) => ({ name, namespaces, servers }));
      const i = this.iface(alias());
      return ok(
        JSON.stringify({
          rules,
          suffix: i ? i.suffix : null,
          register: i ? i.register : null,
          gpo: this.gpoNrpt,
        }),
      );
    }
    if (s.startsWith('ConvertTo-Json -Compress -InputObject @(Get-DnsClientServerAddress')) {
      const ours = unquote(/\$_\.InterfaceAlias -ne ('(?:[^']|'')*')/.exec(s)![1]!);
      return ok(JSON.stringify(this.ifaces.filter((i) => i.alias !== ours).flatMap((i) => i.dns)));
    }
    if (s.includes('Win32_ComputerSystem')) return ok(JSON.stringify(this.consoleUser));
    if (s.includes('if (-not $if) { exit 0 }')) return this.removeFromIface(s, alias());
    if (s.includes('ForEach-Object { Remove-DnsClientNrptRule -Name $_.Name -Force }')) {
      const marker = unquote(/\$_\.Comment -eq ('(?:[^']|'')*')/.exec(s)![1]!);
      this.nrpt = this.nrpt.filter((r) => r.comment !== marker);
      const i = this.iface(alias());
      if (i) i.suffix = '';
      this.cacheClears++;
      return ok();
    }
    for (const line of s.split('\n').filter((l) => l.trim() !== '')) {
      const err = this.change(line);
      if (err) return fail(err);
    }
    return ok();
  }

  private exitState(s: string) {
    const i = s.includes('$tun = $null')
      ? undefined
      : this.iface(
          /-InterfaceAlias ('(?:[^']|'')*')/.exec(s)
            ? unquote(/-InterfaceAlias ('(?:[^']|'')*')/.exec(s)![1]!)
            : '',
        );
    const gateways = this.routesRead(s.split('\n').find((l) => l.startsWith('$g = '))!)
      .filter((r) => r.prefix === '0.0.0.0/0' || r.prefix === '::/0')
      .map((r) => ({
        ...r,
        metric: r.metric + (this.ifaces.find((x) => x.ifIndex === r.ifIndex)?.metric ?? 0),
        family: r.prefix === '::/0' ? 6 : 4,
      }))
      .sort((a, b) => a.metric - b.metric);
    return {
      tunnel: i ? i.ifIndex : null,
      tunnel6: i ? i.v6 : false,
      routes: this.routesRead(s.split('\n').find((l) => l.startsWith('$r = '))!).filter(
        (r) => r.metric === 117,
      ),
      gateways,
    };
  }

  /** The routes a Get-NetRoute reads: the persistent store's copies too unless it names the active store. */
  private routesRead(script: string): FakeRoute[] {
    const activeOnly = script.includes('-PolicyStore ActiveStore');
    return this.routes
      .filter((r) => !activeOnly || r.store === undefined)
      .map(({ store: _store, ...r }) => r);
  }

  private removeFromIface(s: string, alias: string): CommandResult {
    const i = this.iface(alias);
    if (!i) return ok();
    const overlay = /Remove-NetRoute -InterfaceIndex \$if\.ifIndex -DestinationPrefix ('(?:[^']|'')*')/.exec(
      s,
    );
    if (overlay) {
      const p = unquote(overlay[1]!);
      this.routes = this.routes.filter((r) => !(r.ifIndex === i.ifIndex && r.prefix === p));
    }
    i.addresses = i.addresses.filter((a) => a.origin !== 'Manual');
    return ok();
  }

  /** One change line; returns the error PowerShell would print, or null. */
  private change(line: string): string | null {
    const args = [...line.matchAll(QUOTED)].map((m) => unquote(m[0]));
    const num = (flag: string) => Number(new RegExp(`-${flag} (\\d+)`).exec(line)?.[1]);
    const byIndex = () => this.ifaces.find((i) => i.ifIndex === num('InterfaceIndex'));
    const cmd = line.split(' ')[0];
    if (this.failOn?.test(line)) return `${cmd} : The parameter is incorrect.`;
    switch (cmd) {
      case 'Set-NetIPInterface': {
        const i = byIndex();
        if (!i) return 'Set-NetIPInterface : No matching MSFT_NetIPInterface objects found';
        i.dadTransmits = num('DadTransmits');
        return null;
      }
      case 'New-NetIPAddress': {
        const i = byIndex();
        if (!i) return 'New-NetIPAddress : Invalid parameter InterfaceIndex';
        if (i.addresses.some((a) => a.address === args[0]))
          return 'New-NetIPAddress : The object already exists.';
        i.addresses.push({ address: args[0]!, prefixLength: num('PrefixLength'), origin: 'Manual' });
        return null;
      }
      case 'Remove-NetIPAddress': {
        const i = byIndex();
        const before = i?.addresses.length;
        if (i) i.addresses = i.addresses.filter((a) => a.address !== args[0]);
        return i && i.addresses.length < (before ?? 0)
          ? null
          : 'Remove-NetIPAddress : No matching MSFT_NetIPAddress objects found';
      }
      case 'New-NetRoute': {
        const r: FakeRoute = {
          prefix: args[0]!,
          nextHop: args[1]!,
          metric: num('RouteMetric'),
          ifIndex: num('InterfaceIndex'),
        };
        if (!byIndex()) return 'New-NetRoute : Element not found.';
        if (
          this.routes.some(
            (x) => x.prefix === r.prefix && x.nextHop === r.nextHop && x.ifIndex === r.ifIndex && !x.store,
          )
        ) {
          return 'New-NetRoute : Instance MSFT_NetRoute already exists';
        }
        this.routes.push(r);
        return null;
      }
      case 'Remove-NetRoute': {
        const [prefix, nextHop] = args;
        const ix = num('InterfaceIndex');
        const n = this.routes.length;
        // Our removals name the active store: a persistent copy stays.
        this.routes = this.routes.filter(
          (r) => !(r.prefix === prefix && r.nextHop === nextHop && r.ifIndex === ix && r.store === undefined),
        );
        if (this.routes.length < n || line.includes('-ErrorAction SilentlyContinue')) return null;
        return 'Remove-NetRoute : No matching MSFT_NetRoute objects found';
      }
      case 'Add-DnsClientNrptRule': {
        const list = (flag: string) =>
          [...(new RegExp(`-${flag} ((?:'(?:[^']|'')*',?)+)`).exec(line)?.[1] ?? '').matchAll(QUOTED)].map(
            (m) => unquote(m[0]),
          );
        const comment = list('Comment')[0] ?? '';
        this.nrpt.push({
          name: `{rule-${this.nextRule++}}`,
          namespaces: list('Namespace'),
          servers: list('NameServers'),
          comment,
        });
        return null;
      }
      case 'Remove-DnsClientNrptRule': {
        const n = this.nrpt.length;
        this.nrpt = this.nrpt.filter((r) => r.name !== args[0]);
        return this.nrpt.length < n ? null : 'Remove-DnsClientNrptRule : No matching rule';
      }
      case 'Set-DnsClient': {
        const i = this.iface(args[0]!);
        if (!i) return 'Set-DnsClient : No matching MSFT_DNSClient objects found';
        i.suffix = args[1]!;
        i.register = !line.includes('-RegisterThisConnectionsAddress $false');
        return null;
      }
      case 'Clear-DnsClientCache':
        this.cacheClears++;
        return null;
      default:
        return `fake windows does not know: ${line}`;
    }
  }
}
