// Container health check for a broker run with --proxy-protocol --plain-http: exit 0 when
// `GET /healthz` on HOST:PORT answers 200. The listener closes any connection that does not start
// with a PROXY protocol v2 header, so this sends one with command LOCAL (as HAProxy's own checks do).
const net = require('node:net');

const [host, port] = (process.argv[2] ?? '127.0.0.1:8443').split(/:(?=\d+$)/);
const LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
const fail = () => process.exit(1);
const socket = net.connect(Number(port), host, () => {
  socket.write(Buffer.concat([LOCAL, Buffer.from('GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n')]));
});
let reply = '';
socket.on('data', (d) => {
  reply += d;
});
socket.on('close', () => process.exit(/^HTTP\/1\.[01] 200 /.test(reply) ? 0 : 1));
socket.on('error', fail);
socket.setTimeout(2000, fail);
