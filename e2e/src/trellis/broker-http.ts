import type { BrokerRunner } from './broker';
import { cleanEnv } from './paths';

export interface BrokerAnswer {
  status: number;
  json: unknown;
}

/**
 * Node's fetch, run in the broker host's namespace (the lab's addresses are reachable only inside
 * the lab), trusting the broker's own certificate (TLS is verified). The request comes on stdin,
 * so no password or token is ever on a command line.
 */
const REQUEST_SCRIPT = `
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const { url, method, token, body } = JSON.parse(input);
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = { text }; }
  process.stdout.write(JSON.stringify({ status: res.status, json }));
});
`;

/** One request to the broker's HTTP API (a bearer token from API_PATHS.login, or none). */
export async function brokerRequest(
  broker: BrokerRunner,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<BrokerAnswer> {
  const { stdout } = await broker.host.ns.exec(['node', '-e', REQUEST_SCRIPT], {
    env: cleanEnv({ NODE_EXTRA_CA_CERTS: broker.certFile }),
    input: JSON.stringify({ url: `${broker.url}${path}`, method, token: opts.token, body: opts.body }),
    timeoutMs: 30_000,
  });
  return JSON.parse(stdout) as BrokerAnswer;
}
