import type { Logger } from 'pino';
import type { Upstream } from '../dns/upstream-forwarder';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { ResolverConfigurator, ResolverSettings } from './resolver-configurator';

/** resolved's stub listener: a resolv.conf pointing here means resolved does the resolving. */
export const RESOLVED_STUB = '127.0.0.53';

/**
 * systemd-resolved: the stub as the WireGuard link's DNS server and the account's domain as that
 * link's search and routing domain, so only those names come to us (`resolvectl`, the same D-Bus
 * calls NetworkManager makes). The link is the default route for other names only while an exit
 * node is in use, and carries no LLMNR or mDNS. resolved
 * forgets a link's settings when the link goes; `restore` reverts them while it is still there.
 */
export class ResolvedConfigurator implements ResolverConfigurator {
  readonly kind = 'resolved' as const;
  private applied = '';

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

  async apply(s: ResolverSettings): Promise<void> {
    const all = s.defaultRoute === true;
    const key = `${s.interfaceName} ${s.server} ${s.domain} ${all}`;
    if (key === this.applied) return;
    await runChecked(this.runner, 'resolvectl', ['dns', s.interfaceName, s.server]);
    // `~.`: with an exit node, every name is routed to the stub (only more specific domains of
    // other links, a LAN's own, still go there), so none goes to the LAN's resolver in clear.
    await runChecked(this.runner, 'resolvectl', [
      'domain',
      s.interfaceName,
      s.domain,
      ...(all ? ['~.'] : []),
    ]);
    await runChecked(this.runner, 'resolvectl', ['default-route', s.interfaceName, String(all)]);
    // Multicast name discovery has nothing to find across WireGuard, and would tell peers our queries.
    await runChecked(this.runner, 'resolvectl', ['llmnr', s.interfaceName, 'no']);
    await runChecked(this.runner, 'resolvectl', ['mdns', s.interfaceName, 'no']);
    this.applied = key;
    this.log.info(
      { link: s.interfaceName, domain: s.domain, server: s.server },
      'systemd-resolved configured',
    );
  }

  async restore(interfaceName: string): Promise<void> {
    this.applied = '';
    const r = await this.runner.run('resolvectl', ['revert', interfaceName]);
    // The link is gone (down removed it, or it never came up): resolved dropped its settings with it.
    if (r.code !== 0 && !/No such device|not found|Failed to resolve interface/i.test(r.stderr)) {
      this.log.warn({ link: interfaceName, err: r.stderr.trim() }, 'resolvectl revert failed');
    }
  }

  async upstreams(): Promise<Upstream[]> {
    return [];
  }
}

/** Whether systemd-resolved answers on this machine (and the resolv.conf given points at it). */
export async function resolvedInCharge(runner: CommandRunner, resolvConf: string): Promise<boolean> {
  const viaStub = resolvConf
    .split('\n')
    .some((l) => l.trim().split(/\s+/)[0] === 'nameserver' && l.trim().split(/\s+/)[1] === RESOLVED_STUB);
  if (!viaStub) return false;
  const r = await runner.run('resolvectl', ['status']).catch(() => null);
  return r?.code === 0;
}
