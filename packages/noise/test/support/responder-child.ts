import { createSocket } from 'node:dgram';
import {
  consumeInitiation,
  createResponse,
  keyPairFromPrivate,
  openTransport,
  parseTransportHeader,
  ReplayWindow,
  type SessionKeys,
} from '@trellis/noise';

// Runs inside the test namespace: a bare Noise responder on 127.0.0.1:<port> built only from the
// noise package. Prints each event as a JSON line for noise/test/wireguard-go.test.ts.
// argv: <port> <responder private key, base64>

const [portArg, privateKeyArg] = process.argv.slice(2);
const local = keyPairFromPrivate(new Uint8Array(Buffer.from(privateKeyArg!, 'base64')));
const sessions = new Map<number, { keys: SessionKeys; window: ReplayWindow }>();
const socket = createSocket('udp4');
const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
let nextIndex = 1000;

socket.on('message', (packet, from) => {
  const source = `${from.address}:${from.port}`;
  if (packet[0] === 1) {
    const result = consumeInitiation(local, packet);
    if (!result.ok) return print({ event: 'initiation-refused', reason: result.reason, source });
    const response = createResponse(result.state, { senderIndex: nextIndex++ });
    sessions.set(response.session.localIndex, { keys: response.session, window: new ReplayWindow() });
    socket.send(response.packet, from.port, from.address);
    return print({
      event: 'initiation',
      initiatorStatic: Buffer.from(result.initiatorStatic).toString('base64'),
      timestamp: Buffer.from(result.timestamp).toString('hex'),
      senderIndex: result.senderIndex,
      source,
    });
  }
  const header = parseTransportHeader(packet);
  const session = header ? sessions.get(header.receiverIndex) : undefined;
  const opened = session ? openTransport(session.keys, packet) : null;
  if (!session || !opened) return print({ event: 'transport-refused', length: packet.length, source });
  print({
    event: 'transport',
    counter: Number(opened.counter),
    payloadLength: opened.payload.length,
    fresh: session.window.accept(opened.counter),
    source,
  });
});
socket.bind(Number(portArg), '127.0.0.1', () => print({ event: 'listening', port: socket.address().port }));
process.on('SIGTERM', () => socket.close(() => process.exit(0)));
