// Runs inside a test network namespace: one RelayTcpProxy for WireGuard in that namespace. Prints
// the proxy's loopback endpoint on stdout once bound; SIGTERM closes it.
import pino from 'pino';
import { RelayTcpProxy } from '../../src/relay/relay-tcp-proxy';

const [url, fingerprint, allocationId, listenPort] = process.argv.slice(2);
const proxy = new RelayTcpProxy({
  tcp: { url: url!, fingerprint: fingerprint! },
  allocationId: allocationId!,
  listenPort: Number(listenPort),
  logger: pino({ level: 'warn' }, pino.destination(2)),
  backoff: { initialMs: 50, maxMs: 500, random: Math.random },
});
void proxy.start().then((endpoint) => process.stdout.write(`${endpoint}\n`));
process.on('SIGTERM', () => {
  proxy.close();
  process.exit(0);
});
