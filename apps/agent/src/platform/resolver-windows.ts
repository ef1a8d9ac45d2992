import type { Logger } from 'pino';
import type { DnsMode } from '../daemon-options';
import type { Upstream } from '../dns/upstream-forwarder';
import type { CommandRunner } from '../util/command-runner';
import {
  asArray,
  checkAddress,
  checkAlias,
  psString,
  readPowerShellJson,
  runPowerShellLines,
} from './powershell';
import type { ResolverConfigurator, ResolverSettings } from './resolver-configurator';
import type { ResolverChoice } from './select-resolver';

/** What marks our NRPT rules: only rules with exactly this comment are ever changed or removed. */
export const NRPT_COMMENT = 'Trellis mesh DNS (managed by trellisd)';
const NRPT_NAME = 'Trellis';
const DNS_PORT = 53;
/** A domain name, no trailing dot (the account's domain from the broker). */
const DOMAIN_RE =
  /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;
/** Windows lists these site-local placeholders on every adapter without an IPv6 DNS server. */
const PLACEHOLDER_RE = /^fec0:0:0:ffff::[1-3](%\d+)?$/i;
/** Group Policy's NRPT: when it has rules, Windows ignores the local ones (ours). */
const GPO_NRPT_KEY = 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\DNSClient\\DnsPolicyConfig';

interface NrptRule {
  namespaces: string[];
  servers: string[];
}

interface NrptState {
  rules: Array<NrptRule & { name: string }> | (NrptRule & { name: string }) | null;
  suffix: string | null;
  register: boolean | null;
  gpo: boolean;
}

/**
 * Split DNS with the Name Resolution Policy Table: a rule sends the account's domain to the stub
 * and, while an exit node is in use, a rule for `.` sends every other name there too (NRPT rules
 * win over every adapter's servers, so nothing goes to the LAN's resolver in clear). The domain is
 * the WireGuard adapter's connection-specific suffix, so short names are searched in it; the
 * adapter does not register its address in the LAN's dynamic DNS.
 */
export class NrptConfigurator implements ResolverConfigurator {
  readonly kind = 'nrpt' as const;
  private warnedGpo = false;

  constructor(
    private readonly interfaceName: string,
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

  async apply(s: ResolverSettings): Promise<void> {
    const alias = psString(checkAlias(s.interfaceName));
    const server = checkAddress(s.server);
    const domain = s.domain.replace(/\.$/, '');
    if (!DOMAIN_RE.test(domain)) throw new Error(`refusing DNS domain ${JSON.stringify(s.domain)}`);
    const state = await this.read(alias);
    if (state.gpo && !this.warnedGpo) {
      this.warnedGpo = true;
      this.log.warn(
        'Group Policy sets NRPT rules here: Windows ignores local NRPT rules then, so the mesh names may not resolve',
      );
    }
    const want: NrptRule[] = [{ namespaces: [`.${domain}`, domain], servers: [server] }];
    if (s.defaultRoute === true) want.push({ namespaces: ['.'], servers: [server] });
    const have = asArray(state.rules);
    const lines: string[] = [];
    // New rules before old ones go: never a moment without `.` when an exit node stays wanted.
    for (const r of want) if (!have.some((h) => sameRule(h, r))) lines.push(addRule(r));
    for (const h of have) if (!want.some((r) => sameRule(h, r))) lines.push(removeRule(h.name));
    if (state.suffix !== null && (state.suffix.toLowerCase() !== domain.toLowerCase() || state.register)) {
      lines.push(
        `Set-DnsClient -InterfaceAlias ${alias} -ConnectionSpecificSuffix ${psString(domain)} -RegisterThisConnectionsAddress $false`,
      );
    }
    if (lines.length === 0) return;
    // Answers cached from before the change (the LAN's, or a dead stub's) must not linger.
    lines.push('Clear-DnsClientCache');
    await runPowerShellLines(this.runner, lines);
    this.log.info({ domain, server, defaultRoute: s.defaultRoute === true }, 'NRPT configured');
  }

  async restore(interfaceName: string): Promise<void> {
    await runPowerShellLines(this.runner, [
      [
        `Get-DnsClientNrptRule -ErrorAction SilentlyContinue | Where-Object { $_.Comment -eq ${psString(NRPT_COMMENT)} } | ForEach-Object { Remove-DnsClientNrptRule -Name $_.Name -Force }`,
        // The adapter may be gone already (and its suffix with it).
        `Set-DnsClient -InterfaceAlias ${psString(checkAlias(interfaceName))} -ResetConnectionSpecificSuffix -ErrorAction SilentlyContinue`,
        'Clear-DnsClientCache',
      ].join('\n'),
    ]);
  }

  /**
   * The other adapters' DNS servers: where the stub sends names for the peers that use this device
   * as their exit node (NRPT sends only the domain here otherwise).
   */
  async upstreams(): Promise<Upstream[]> {
    const alias = psString(checkAlias(this.interfaceName));
    const servers = await readPowerShellJson<string[] | string>(
      this.runner,
      `ConvertTo-Json -Compress -InputObject @(Get-DnsClientServerAddress -ErrorAction SilentlyContinue | Where-Object { $_.InterfaceAlias -ne ${alias} } | ForEach-Object { $_.ServerAddresses })`,
    );
    const out: Upstream[] = [];
    for (const address of asArray(servers)) {
      if (PLACEHOLDER_RE.test(address) || address.includes('%')) continue;
      if (!out.some((u) => u.address === address)) out.push({ address, port: DNS_PORT });
    }
    return out;
  }

  private async read(alias: string): Promise<NrptState> {
    const state = await readPowerShellJson<NrptState>(
      this.runner,
      [
        `$r = @(Get-DnsClientNrptRule -ErrorAction SilentlyContinue | Where-Object { $_.Comment -eq ${psString(NRPT_COMMENT)} } | ForEach-Object { [pscustomobject]@{ name = $_.Name; namespaces = @($_.Namespace); servers = @($_.NameServers) } })`,
        `$c = Get-DnsClient -InterfaceAlias ${alias} -ErrorAction SilentlyContinue`,
        `$gpo = Test-Path -LiteralPath ${psString(GPO_NRPT_KEY)}`,
        'ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ rules = $r; suffix = $(if ($c) { [string]$c.ConnectionSpecificSuffix } else { $null }); register = $(if ($c) { [bool]$c.RegisterThisConnectionsAddress } else { $null }); gpo = $gpo })',
      ].join('\n'),
    );
    return state ?? { rules: [], suffix: null, register: null, gpo: false };
  }
}

function addRule(r: NrptRule): string {
  const namespaces = r.namespaces.map(psString).join(',');
  const servers = r.servers.map(psString).join(',');
  return `Add-DnsClientNrptRule -Namespace ${namespaces} -NameServers ${servers} -DisplayName ${psString(NRPT_NAME)} -Comment ${psString(NRPT_COMMENT)}`;
}

function removeRule(name: string): string {
  return `Remove-DnsClientNrptRule -Name ${psString(name)} -Force`;
}

/** Same namespaces (any order, any case) and the same servers. */
function sameRule(a: NrptRule, b: NrptRule): boolean {
  const norm = (xs: unknown) =>
    asArray(xs as string[])
      .map((x) => String(x).toLowerCase())
      .sort()
      .join(' ');
  return norm(a.namespaces) === norm(b.namespaces) && norm(a.servers) === norm(b.servers);
}

/**
 * The resolver for `--dns MODE` on Windows: `auto` is NRPT; `stub` and `off` leave the OS alone;
 * the Linux modes are refused. Recovery removes our NRPT rules whatever the mode was.
 */
export function selectWindowsResolver(
  mode: DnsMode,
  interfaceName: string,
  runner: CommandRunner,
  log: Logger,
): ResolverChoice {
  if (mode === 'resolved' || mode === 'resolv-conf') {
    throw new Error(`--dns ${mode} is for Linux; on Windows use auto (NRPT), stub or off`);
  }
  const nrpt = new NrptConfigurator(interfaceName, runner, log);
  return {
    resolver: mode === 'auto' ? nrpt : null,
    recover: (name) => nrpt.restore(name),
  };
}
