// Runs inside a test network namespace: accepts TCP on 127.0.0.1:PORT and pipes each connection to
// a unix socket on the host filesystem (shared by all namespaces). This is how daemons in their
// namespaces reach the in-test broker double without any host network interface being touched.
const net = require('node:net');

const [port, socketPath] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('forwarding\n'));
process.on('SIGTERM', () => process.exit(0));
