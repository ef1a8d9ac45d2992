import { spawn } from 'node:child_process';

/**
 * Linux address, link and route change events from `ip -o monitor address link route` (netlink, no
 * polling): calls `onChange` for every event line. Returns a stop function. If `ip` cannot run, it
 * stays silent and the caller's periodic re-read is what notices changes.
 */
export function watchLinuxNetworkEvents(onChange: () => void): () => void {
  const child = spawn('ip', ['-o', 'monitor', 'address', 'link', 'route'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  child.on('error', () => undefined);
  child.stdout.on('data', () => onChange());
  return () => {
    child.stdout.removeAllListeners('data');
    child.kill();
  };
}
