import { spawn } from 'node:child_process';
import type { PeerStatus, StatusResponse } from '@trellis/proto';

/** The peer a user means: its name, DNS name, overlay address or id. */
export function findPeer(status: StatusResponse, query: string): PeerStatus | undefined {
  return status.peers.find(
    (p) => p.name === query || p.dnsName === query || p.address === query || p.id === query,
  );
}

/** How one reply travelled, as the path logic and WireGuard say now. */
export function describePath(peer: PeerStatus | undefined): string {
  if (!peer) return 'peer gone';
  if (peer.path === 'direct-lan') return `direct LAN ${peer.endpoint ?? ''}`.trimEnd();
  if (peer.path === 'direct-internet') return `direct internet ${peer.endpoint ?? ''}`.trimEnd();
  if (peer.path === 'none') return `not direct${peer.endpoint ? ` (trying ${peer.endpoint})` : ''}`;
  // Over the TCP fallback the endpoint is the agent's loopback proxy (127.0.0.1:port).
  if (peer.path === 'relay') return `via relay ${peer.relayName ?? '?'} (${peer.endpoint ?? 'no endpoint'})`;
  return peer.endpoint ? `via ${peer.endpoint}` : 'no endpoint';
}

const REPLY = /icmp_seq=(\d+).*time=([\d.]+) ms/;

/**
 * Pings the peer's overlay address with the system `ping` (one ICMP echo per second) and prints,
 * for every reply, whether the path is direct (which ip:port) or relayed (which relay) and the latency. Resolves to the
 * number of replies.
 */
export function meshPing(
  address: string,
  count: number,
  pathNow: () => Promise<string>,
  out: (line: string) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ping', ['-n', '-c', String(count), '-W', '2', address], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let replies = 0;
    let buffered = '';
    let chain = Promise.resolve();
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = REPLY.exec(line);
        if (!m) continue;
        replies += 1;
        chain = chain.then(async () =>
          out(`reply from ${address}: seq=${m[1]} time=${m[2]} ms path=${await pathNow()}`),
        );
      }
    });
    child.on('error', reject);
    child.on('close', () => void chain.then(() => resolve(replies)));
  });
}
