// Container health check: exit 0 when GET URL answers 200. The broker's certificate is its own
// (self-signed, or one the proxy alone trusts): this asks the process on loopback, not who it is.
const url = new URL(process.argv[2] ?? 'https://127.0.0.1:8443/healthz');
const req = require('node:https').get(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
