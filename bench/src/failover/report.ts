import { percentile, printTable } from '../stats';
import type { FanOut } from './fan-out';

export interface SizeResult {
  /** Devices on the victim, and on each of the two others. */
  n: number;
  others: number;
  enrollSec: number;
  connectSec: number;
  rehomeSec: number;
  /** All devices on one instance; spread over three; on the two survivors after the failover. */
  baseline: FanOut;
  spread: FanOut;
  after: FanOut;
  victims: number;
  /** Per victim device, ms from the kill: its connection closed; it had a snapshot from another instance. */
  closedMs: number[];
  reconnectMs: number[];
  /** The same devices: ms from the kill to the successful attempt's WebSocket open, and its challenge. */
  openMs: number[];
  challengeMs: number[];
  notReconnected: number;
  /** Devices whose first attempt after the drop did not get a snapshot. */
  retried: number;
  /** Devices that came back with a delta from the netmap they held (no snapshot). */
  resumed: number;
  /** Where the victim's devices landed (per instance). */
  landed: number[];
  collateral: number;
  failures: Record<string, number>;
  /** Rows naming the dead instance at the kill, and ms until none did (null: not while watched). */
  staleAtKill: number;
  staleClearedMs: number | null;
  maxOffline: number;
  /** PostgreSQL during the failover: most backends waiting on a lock / idle in a transaction at once. */
  maxLockWaits: number;
  maxIdleInTx: number;
  /** Of the samples with a lock waiter, the share where a blocker was idle in its transaction (%). */
  blockerIdlePct: number;
  /** Account serial bumps (device changes committed) in the busiest second of the watch, and in all. */
  maxChangesPerSec: number;
  changes: number;
  /** How long the bench waited for the victim's devices (s), and how many were not back by then. */
  giveUpSec: number;
  neverBack: number;
  /** Victim devices the observers (one per survivor) saw offline, and ms until online again. */
  shownOffline: number;
  onlineAgainMs: number[];
  survivorCpuSec: number;
  /** CPU of the one process all simulated devices share, from the kill to the last one back. */
  clientCpuSec: number;
  /** The machine's 1-minute load average at the kill (other work on the same cores). */
  loadAtKill: number;
  logs: Array<{ broker: string; level: string; msg: string; count: number }>;
}

const p = (xs: number[], q: number) => percentile(xs, q);

export function sizeLine(r: SizeResult): string {
  return (
    `[${r.n}] fan-out p99 one instance ${p(r.baseline.times, 99).toFixed(1)} ms, three ` +
    `${p(r.spread.times, 99).toFixed(1)} ms, after the failover ${p(r.after.times, 99).toFixed(1)} ms; ` +
    `${r.victims} devices on the victim back on another instance p50/p99/max ` +
    `${p(r.reconnectMs, 50).toFixed(0)}/${p(r.reconnectMs, 99).toFixed(0)}/${p(r.reconnectMs, 100).toFixed(0)} ms ` +
    `(their WebSocket open p50/p99 ${p(r.openMs, 50).toFixed(0)}/${p(r.openMs, 99).toFixed(0)} ms, ` +
    `challenge ${p(r.challengeMs, 50).toFixed(0)}/${p(r.challengeMs, 99).toFixed(0)} ms), ` +
    `${r.notReconnected} not within 30 s`
  );
}

/** `lists`: how the devices' broker lists are ordered (and any jitter), for the title. */
export function printResults(results: SizeResult[], rounds: number, lists: string): void {
  printTable(
    `fan-out of one endpoint change to every other device, ${rounds} changes per setup (ms from the ` +
      'changer sending it to the delta; "remote": devices on another instance than the changer)',
    [
      'victim+others',
      '1 inst p50',
      '1 inst p99',
      '3 inst p50',
      '3 inst p99',
      '3 inst remote p99',
      'p99 ×',
      'after p50',
      'after p99',
      'missed',
    ],
    results.map((r) => [
      `${r.n}+${r.others}+${r.others}`,
      p(r.baseline.times, 50),
      p(r.baseline.times, 99),
      p(r.spread.times, 50),
      p(r.spread.times, 99),
      p(r.spread.remote, 99),
      `×${(p(r.spread.times, 99) / p(r.baseline.times, 99)).toFixed(2)}`,
      p(r.after.times, 50),
      p(r.after.times, 99),
      r.baseline.missing + r.spread.missing + r.after.missing,
    ]),
  );
  printTable(
    `failover: instance A SIGKILLed, its devices fail over to B and C (lists: ${lists}); ms from the kill`,
    [
      'on A',
      'closed p99',
      'back p50',
      'back p99',
      'back max',
      'not in 30 s',
      'never back',
      'retried',
      'resumed',
      'failed attempts',
      'landed B/C',
      'others dropped',
    ],
    results.map((r) => [
      r.victims,
      p(r.closedMs, 99),
      p(r.reconnectMs, 50),
      p(r.reconnectMs, 99),
      p(r.reconnectMs, 100),
      r.notReconnected,
      r.neverBack === 0 ? 0 : `${r.neverBack} (${r.giveUpSec} s)`,
      r.retried,
      r.resumed,
      Object.values(r.failures).reduce((a, b) => a + b, 0),
      `${r.landed[1]}/${r.landed[2]}`,
      r.collateral,
    ]),
  );
  printTable(
    'failover: what the rest saw',
    [
      'on A',
      'A rows stale until',
      'shown offline',
      'online again p99',
      'PG lock waits',
      'PG idle in tx',
      'blocker idle %',
      'changes',
      'changes/s max',
      'B+C CPU s',
      'clients CPU s',
      'load',
      'pings lost',
    ],
    results.map((r) => [
      r.victims,
      r.staleClearedMs === null ? `>${r.giveUpSec} s (${r.staleAtKill} at kill)` : r.staleClearedMs,
      r.shownOffline,
      p(r.onlineAgainMs, 99),
      r.maxLockWaits,
      r.maxIdleInTx,
      r.blockerIdlePct,
      r.changes,
      r.maxChangesPerSec,
      r.survivorCpuSec,
      r.clientCpuSec,
      r.loadAtKill,
      'n/a',
    ]),
  );
  console.log(
    '\n"back": the device has its netmap from another instance; "retried": back, but not at its first' +
      ' attempt; "resumed": back with a delta from the netmap it held, not a snapshot; "others dropped": devices of B and C that lost their connection meanwhile.' +
      '\n"A rows stale until": until no device row in PostgreSQL names A\'s connections any more (what' +
      ' every survivor\'s netmap is built from); "shown offline": victim devices an observer (one device' +
      ' on B, one on C) saw go offline; "PG lock waits" / "PG idle in tx": most backends of the database' +
      ' at once waiting on a lock / holding a transaction open, sampled every 100 ms; "blocker idle %":' +
      ' of the samples with a lock waiter, those where a transaction it waited for sat idle (waiting on' +
      ' its broker, not on PostgreSQL); "changes": bumps of' +
      " the account's netmap serial (one per committed online/offline/endpoint change, each under the" +
      " account row's lock) while watched, and the most in one second;" +
      ' "clients CPU": the one process all simulated devices share (from the kill to the last one back);' +
      ' "load": the 1-minute load average at the kill (everything, this bench too, on the same cores).' +
      '\nThe kill is a process kill on this machine: the kernel closes its sockets, so devices notice at' +
      ' once; a machine that dies or drops off the network is noticed by the heartbeat (3 × 15 s) or TCP.' +
      '\n"pings lost": this bench simulates the control plane only (no WireGuard data plane); the' +
      ' data-plane figure comes from the NAT-lab three-broker test, not from here.',
  );
  const failures = results.flatMap((r) => Object.entries(r.failures).map(([m, c]) => `[${r.n}] ${c}× ${m}`));
  if (failures.length > 0) console.log(`failed attempts during the failover: ${failures.join('; ')}`);
}

export function printLogs(r: SizeResult): void {
  if (r.logs.length === 0) {
    console.log(`[${r.n}] broker logs: nothing at warn or above`);
    return;
  }
  console.log(`[${r.n}] broker logs at warn and above (instance, count, message):`);
  for (const l of r.logs) console.log(`  ${l.broker}  ${String(l.count).padStart(5)}× ${l.level} ${l.msg}`);
}
