import { posix, win32 } from 'node:path';
import { WINDOWS_PIPE_PATH } from '../ipc/pipe-auth-windows';

/** Where trellisd keeps its state unless told: ProgramData on Windows, /var/lib elsewhere. */
export function defaultStateDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (platform === 'win32') return win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Trellis');
  return '/var/lib/trellis';
}

/** The control socket unless told: a named pipe on Windows, a unix socket in the state directory elsewhere. */
export function defaultSocket(stateDir: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? WINDOWS_PIPE_PATH : posix.join(stateDir, 'trellisd.sock');
}
