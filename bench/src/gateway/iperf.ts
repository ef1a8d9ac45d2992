import type { Namespace } from '@trellis/e2e';

export interface TcpRun {
  bitsPerSecond: number;
  retransmits: number;
}

interface IperfJson {
  error?: string;
  end: {
    sum_received?: { bits_per_second: number };
    sum_sent?: { retransmits?: number };
  };
}

/**
 * iperf3 TCP from `client` to `address` (a mesh address, or a LAN host's address behind a gateway),
 * served in `server` bound to `bind` (default `address`; a virtual device's LAN host binds its LAN
 * address while clients use its mesh address); the server serves exactly one test. The first
 * second (slow start) is omitted.
 */
export async function tcpRun(
  client: Namespace,
  server: Namespace,
  address: string,
  seconds: number,
  bind = address,
): Promise<TcpRun> {
  const port = 5201;
  const srv = server.spawn('iperf3', ['-s', '-1', '--forceflush', '-B', bind, '-p', String(port)], {
    logName: `iperf3-server-${address}`,
  });
  try {
    await srv.waitForLine(/Server listening/, 10_000);
    const { stdout } = await client.exec(
      ['iperf3', '-c', address, '-p', String(port), '-J', '-t', String(seconds), '-O', '1'],
      { timeoutMs: (seconds + 60) * 1000 },
    );
    const j = JSON.parse(stdout) as IperfJson;
    if (j.error || !j.end.sum_received) throw new Error(`iperf3 to ${address}: ${j.error ?? 'no result'}`);
    return {
      bitsPerSecond: j.end.sum_received.bits_per_second,
      retransmits: j.end.sum_sent?.retransmits ?? 0,
    };
  } finally {
    await srv.stop(2_000);
  }
}
