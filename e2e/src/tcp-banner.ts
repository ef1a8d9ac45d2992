import { exec } from './exec';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';

/**
 * TCP banners: a server that greets every connection on its ports with one line naming itself
 * (and logs who connected), and a client that reads that line. Two LAN hosts with the same address
 * at two sites tell apart which one a connection reached.
 */

/** Writes `TEXT\n` to every connection, then closes it; prints `listening PORT` and `accepted PORT IP`. */
const BANNER_SERVER_JS = `
const net = require('node:net');
const [host, text, ...ports] = process.argv.slice(1);
for (const port of ports.map(Number)) {
  net
    .createServer((s) => {
      console.log('accepted ' + port + ' ' + s.remoteAddress.replace(/^::ffff:/, ''));
      s.on('error', () => {});
      s.end(text + '\\n');
    })
    .listen(port, host, () => console.log('listening ' + port));
}
`;

/** Connects, prints what the server sent once it closes; exits 1 on an error or after `ms`. */
const BANNER_CLIENT_JS = `
const net = require('node:net');
const [host, port, ms] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let got = '';
const s = net.connect({ host, port });
const t = setTimeout(() => { console.error('timeout'); process.exit(1); }, ms);
s.on('data', (d) => { got += d; });
s.on('error', (e) => { console.error(e.code || e.message); process.exit(1); });
s.on('close', () => { clearTimeout(t); process.stdout.write(got); process.exit(0); });
`;

export class BannerServer {
  constructor(
    readonly process: LabProcess,
    readonly text: string,
  ) {}

  /** Sources of the connections accepted on `port` so far. */
  acceptedFrom(port: number): string[] {
    const out: string[] = [];
    for (const l of this.process.lines) {
      const m = /^accepted (\d+) (\S+)$/.exec(l);
      if (m && Number(m[1]) === port) out.push(m[2]!);
    }
    return out;
  }
}

/** A banner server in `ns` on `ports` of `address` (default every address) answering `text`. */
export async function startBannerServer(
  ns: Namespace,
  text: string,
  ports: readonly number[],
  address = '0.0.0.0',
): Promise<BannerServer> {
  if (text.includes('\n')) throw new Error('a banner is one line');
  const p = ns.spawn('node', ['-e', BANNER_SERVER_JS, address, text, ...ports.map(String)], {
    logName: `banner-${ns.name}-${ports.join('-')}`,
  });
  for (const port of ports) await p.waitForLine(new RegExp(`^listening ${port}$`), 15_000);
  return new BannerServer(p, text);
}

/**
 * The banner `address:port` sends to a connection from `ns` (trimmed), or null when none arrives
 * within `timeoutS` (refused, dropped, unreachable). Never throws.
 */
export async function readBanner(
  ns: Namespace,
  address: string,
  port: number,
  timeoutS = 3,
): Promise<string | null> {
  try {
    const { stdout } = await exec(
      ns.name,
      ['node', '-e', BANNER_CLIENT_JS, address, String(port), String(timeoutS * 1000)],
      { timeoutMs: (timeoutS + 15) * 1000 },
    );
    return stdout.trim() || null;
  } catch {
    return null;
  }
}
