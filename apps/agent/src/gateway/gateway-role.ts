import type { GatewayFirewall, GatewayPolicy } from '@trellis/firewall';
import type { Logger } from 'pino';
import type { IpForward } from './ip-forward';

/**
 * The gateway role's OS side: the forwarding rules (GatewayFirewall) and ip_forward. Rules go in
 * before forwarding is switched on, and forwarding goes off before the rules are taken away, so
 * nothing is forwarded unfiltered in between.
 */
export class GatewayRole {
  private on = false;
  /** Rules a crashed or killed run may have left: the first `end` takes them away too. */
  private leftover = true;
  lastError: string | null = null;

  constructor(
    private readonly firewall: GatewayFirewall,
    private readonly forward: IpForward,
    private readonly log: Logger,
  ) {}

  get active(): boolean {
    return this.on;
  }

  /**
   * On a start that does not bring the mesh up: ip_forward and rules a crashed run left go. (One
   * that does leaves them to its first mesh apply, so a restarted gateway keeps forwarding.)
   */
  async recover(): Promise<void> {
    await this.restoreForward();
    await this.firewall.remove();
    this.leftover = false;
  }

  /** Serves `policy`, or ends the role when null. */
  async apply(policy: GatewayPolicy | null): Promise<void> {
    if (policy === null) return this.end();
    try {
      const { changed } = await this.firewall.apply(policy);
      await this.forward.enable();
      if (changed || !this.on) {
        this.log.info(
          {
            lan: policy.lan?.interfaceName ?? null,
            routes: policy.lan?.routes ?? [],
            virtualDevices: policy.virtualDevices.length,
            exit: !!policy.exitNode,
          },
          'gateway role applied',
        );
      }
      this.on = true;
      this.leftover = false;
      this.lastError = null;
    } catch (err) {
      this.lastError = (err as Error).message;
      await this.fallBack(this.lastError);
      throw err;
    }
  }

  /**
   * A failed apply may leave the old, wider ruleset (or half a new one): forwarding goes off and
   * the rules go, so nothing is forwarded until the next apply succeeds.
   */
  private async fallBack(reason: string): Promise<void> {
    this.log.error({ err: reason }, 'gateway role failed: forwarding off until the next apply');
    this.on = false;
    await this.restoreForward().catch((e: Error) =>
      this.log.warn({ err: e.message }, 'ip_forward was not restored'),
    );
    await this.firewall.remove().then(
      () => {
        this.leftover = false;
      },
      (e: Error) => {
        this.leftover = true;
        this.log.warn({ err: e.message }, 'gateway rules were not removed');
      },
    );
  }

  async end(): Promise<void> {
    await this.restoreForward();
    if (!this.on && !this.leftover) return;
    await this.firewall.remove();
    if (this.on) this.log.info('gateway role ended');
    this.on = false;
    this.leftover = false;
  }

  /** ip_forward back as it was, unless another program changed it since the role set it. */
  private async restoreForward(): Promise<void> {
    const left = await this.forward.restore();
    if (left) {
      this.log.warn(
        { ipForward: left.current, before: left.previous },
        'ip_forward was changed by another program since the gateway role set it: left as it is',
      );
    }
  }
}
