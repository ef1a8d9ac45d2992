import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CommandRunner } from '../util/command-runner';
import type { WireGuardBackend, WireGuardMode } from './backend';
import { KernelBackend } from './kernel';
import { UserspaceBackend } from './userspace';

/** `auto` prefers the kernel module and falls back to wireguard-go. */
export async function selectBackend(
  mode: WireGuardMode,
  interfaceName: string,
  stateDir: string,
  runner: CommandRunner,
  logger: Logger,
): Promise<WireGuardBackend> {
  const userspace = () =>
    new UserspaceBackend({
      interfaceName,
      runner,
      logger,
      pidFile: join(stateDir, 'wireguard-go.pid'),
    });
  if (mode === 'userspace') return userspace();
  if (mode === 'kernel') return new KernelBackend(interfaceName, runner, logger);
  if (await KernelBackend.available(runner)) return new KernelBackend(interfaceName, runner, logger);
  logger.info('no kernel WireGuard module; using wireguard-go');
  return userspace();
}
