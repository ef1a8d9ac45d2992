import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

// Runs in the "internet" namespace: on {"cmd":"send",host,port,data} sends one datagram from a fresh
// socket (a new source port, so no stale conntrack entry decides its fate) and reports the port.

const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { cmd: string; host: string; port: number; data: string };
  if (command.cmd !== 'send') return;
  const socket = createSocket('udp4');
  socket.bind(0, () => {
    const { port } = socket.address();
    socket.send(command.data, command.port, command.host, (error) => {
      print({ event: 'sent', data: command.data, sourcePort: port, error: error?.message ?? null });
      socket.close();
    });
  });
});
print({ event: 'ready' });
