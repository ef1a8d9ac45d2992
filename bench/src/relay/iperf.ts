import { readFileSync } from 'node:fs';
import type { AgentRunner } from '@trellis/e2e';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux this runs on). */
const USER_HZ = 100;

export interface TcpResult {
  bitsPerSecond: number;
  bytes: number;
  retransmits: number;
}

export interface UdpResult {
  packetsPerSecond: number;
  lostPercent: number;
}

/** One iperf3 run from `client` to `server`'s overlay address; the server serves exactly one test. */
async function iperf(client: AgentRunner, server: AgentRunner, serverAddress: string, args: string[]) {
  const port = 5201;
  const srv = server.device.ns.spawn(
    'iperf3',
    ['-s', '-1', '--forceflush', '-B', serverAddress, '-p', String(port)],
    {
      logName: `iperf3-server-${server.device.site.name}`,
    },
  );
  try {
    await srv.waitForLine(/Server listening/, 10_000);
    const { stdout } = await client.device.ns.exec(
      ['iperf3', '-c', serverAddress, '-p', String(port), '-J', ...args],
      { timeoutMs: 120_000 },
    );
    return JSON.parse(stdout) as IperfJson;
  } finally {
    await srv.stop(2_000);
  }
}

interface IperfJson {
  error?: string;
  end: {
    sum_received?: { bits_per_second: number; bytes: number };
    sum_sent?: { retransmits?: number };
    sum?: { packets: number; lost_percent: number; seconds: number; lost_packets: number };
  };
}

/** TCP throughput for `seconds` (the first second, slow start, is omitted). */
export async function tcpThroughput(
  client: AgentRunner,
  server: AgentRunner,
  serverAddress: string,
  seconds: number,
): Promise<TcpResult> {
  const j = await iperf(client, server, serverAddress, ['-t', String(seconds), '-O', '1']);
  if (j.error || !j.end.sum_received) throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  return {
    bitsPerSecond: j.end.sum_received.bits_per_second,
    bytes: j.end.sum_received.bytes,
    retransmits: j.end.sum_sent?.retransmits ?? 0,
  };
}

/** UDP at a fixed packet rate with small datagrams: how many arrive. */
export async function udpAtRate(
  client: AgentRunner,
  server: AgentRunner,
  serverAddress: string,
  packetsPerSecond: number,
  seconds: number,
): Promise<UdpResult> {
  const payload = 64;
  const bits = packetsPerSecond * payload * 8;
  const j = await iperf(client, server, serverAddress, [
    '-u',
    '-l',
    String(payload),
    '-b',
    String(bits),
    '-t',
    String(seconds),
  ]);
  if (j.error || !j.end.sum) throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  return { packetsPerSecond: j.end.sum.packets / j.end.sum.seconds, lostPercent: j.end.sum.lost_percent };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** CPU seconds the whole machine has been busy (every core; user, system, irq, softirq, steal). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / USER_HZ;
}
