import type { Logger } from 'pino';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { WireGuardBackend } from './backend';
import type { WgConfigUpdate, WgDeviceState } from './types';
import { WgToolClient } from './wg-tool';

/** The in-kernel WireGuard module: `ip link add IF type wireguard`, configured through `wg`. */
export class KernelBackend implements WireGuardBackend {
  readonly kind = 'kernel' as const;
  private readonly wg: WgToolClient;

  constructor(
    readonly interfaceName: string,
    private readonly runner: CommandRunner,
    private readonly logger: Logger,
  ) {
    this.wg = new WgToolClient(runner, interfaceName);
  }

  /** True when the kernel can create a wireguard link (probed with a throwaway name). */
  static async available(runner: CommandRunner): Promise<boolean> {
    const probe = `trlprobe${process.pid % 100000}`;
    const r = await runner.run('ip', ['link', 'add', probe, 'type', 'wireguard']);
    if (r.code !== 0) return false;
    await runner.run('ip', ['link', 'del', probe]);
    return true;
  }

  onRecreated(): void {
    // A kernel interface has no process that can die under us.
  }

  async start(): Promise<void> {
    const del = await this.runner.run('ip', ['link', 'del', this.interfaceName]);
    if (del.code === 0) this.logger.warn({ interface: this.interfaceName }, 'removed stale interface');
    await runChecked(this.runner, 'ip', ['link', 'add', this.interfaceName, 'type', 'wireguard']);
  }

  getState(): Promise<WgDeviceState> {
    return this.wg.get();
  }

  apply(update: WgConfigUpdate): Promise<void> {
    return this.wg.set(update);
  }

  async stop(): Promise<void> {
    await this.runner.run('ip', ['link', 'del', this.interfaceName]);
  }
}
