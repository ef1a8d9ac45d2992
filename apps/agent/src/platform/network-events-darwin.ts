import type { CommandRunner } from '../util/command-runner';
import type { NetworkChangeEvents } from './candidates';

/** Routing socket messages that mean an address, a link or a route changed. */
const CHANGE = /^(RTM_ADD|RTM_DELETE|RTM_CHANGE|RTM_NEWADDR|RTM_DELADDR|RTM_IFINFO):/;

/**
 * macOS address, link and route change events from `route -n monitor` (the routing socket, no
 * polling), the same shape as the Linux `ip monitor` watch: `onChange` once per message. ARP and
 * neighbour entries (flags with LLINFO), which come and go all the time, are not changes. If
 * `route` cannot run it stays silent and the caller's periodic re-read notices changes.
 */
export function darwinNetworkEvents(runner: CommandRunner): NetworkChangeEvents {
  return (onChange) => {
    const child = runner.spawn('route', ['-n', 'monitor']);
    child.on('error', () => undefined);
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (isChange(line)) onChange();
    });
    return () => {
      child.stdout?.removeAllListeners('data');
      child.kill();
    };
  };
}

export function isChange(line: string): boolean {
  return CHANGE.test(line) && !/flags:<[^>]*LLINFO/.test(line);
}
