import { createInterface } from 'node:readline';
import { EndpointReflector } from '@trellis/reflector';

// Runs inside a test namespace: an EndpointReflector on <host, default 127.0.0.1>:<port> that prints every
// observation as a JSON line and answers `{"cmd":"counters"}` on stdin with its counters.
// argv: <port> <reflector private key, base64> <enrolled device keys, comma-separated> [host]

const [portArg, privateKey, enrolledArg, hostArg] = process.argv.slice(2);
const enrolled = new Set((enrolledArg ?? '').split(',').filter(Boolean));
const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

const reflector = new EndpointReflector({
  privateKey: privateKey!,
  host: hostArg ?? '127.0.0.1',
  port: Number(portArg),
  // Asynchronous on purpose, like a database lookup in the broker.
  isEnrolled: async (key) => enrolled.has(key),
});
reflector.on('observed', (observation) => print({ event: 'observed', ...observation }));
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { cmd: string };
  if (command.cmd === 'counters') print({ event: 'counters', counters: reflector.counters() });
});
void reflector
  .start()
  .then(({ port }) => print({ event: 'listening', port, publicKey: reflector.publicKey }));
process.on('SIGTERM', () => void reflector.close().then(() => process.exit(0)));
