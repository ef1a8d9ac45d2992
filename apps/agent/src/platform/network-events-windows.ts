import type { CommandRunner } from '../util/command-runner';
import type { NetworkChangeEvents } from './candidates';
import { POWERSHELL, psArgs } from './powershell';

/**
 * .NET's NetworkChange events (NotifyAddrChange and NotifyIpInterfaceChange underneath: no
 * polling), one line on stdout each. The loop ends by itself when stdout is gone (the agent died).
 */
export const NETWORK_EVENTS_SCRIPT = [
  "Register-ObjectEvent -InputObject ([System.Net.NetworkInformation.NetworkChange]) -EventName NetworkAddressChanged -SourceIdentifier 'trellis.address' | Out-Null",
  "Register-ObjectEvent -InputObject ([System.Net.NetworkInformation.NetworkChange]) -EventName NetworkAvailabilityChanged -SourceIdentifier 'trellis.link' | Out-Null",
  "[Console]::Out.WriteLine('ready')",
  '[Console]::Out.Flush()',
  'while ($true) {',
  '  $e = Wait-Event',
  '  Remove-Event -EventIdentifier $e.EventIdentifier',
  '  [Console]::Out.WriteLine($e.SourceIdentifier)',
  '  [Console]::Out.Flush()',
  '}',
  '',
].join('\n');

/**
 * Windows address and link change events from a PowerShell that waits on them: `onChange` for each
 * event line. If PowerShell cannot run it stays silent and the caller's periodic re-read is what
 * notices changes. Returns a stop function that ends the PowerShell.
 */
export function windowsNetworkEvents(runner: CommandRunner): NetworkChangeEvents {
  return (onChange) => {
    const child = runner.spawn(POWERSHELL, psArgs(NETWORK_EVENTS_SCRIPT));
    child.on('error', () => undefined);
    let partial = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      partial += chunk;
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('trellis.')) onChange();
    });
    // Its stderr is not read: drained so PowerShell never blocks on a full pipe.
    child.stderr?.resume();
    return () => {
      child.stdout?.removeAllListeners('data');
      child.kill();
    };
  };
}
