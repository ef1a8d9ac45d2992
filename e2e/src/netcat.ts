import { exec } from './exec';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';
import { waitFor } from './wait';

/**
 * Probes with real netcat (netcat-openbsd) and two tiny node TCP programs: listeners inside the
 * destination namespace, clients in the source one. Every helper that expects "no" waits its full
 * `waitS`, so callers decide how long silence must last.
 */

/** Waits until something in `ns` listens on `port` (`ss`), so a probe never races the listener. */
export async function waitListening(ns: Namespace, proto: 'tcp' | 'udp', port: number): Promise<void> {
  await waitFor(
    async () => {
      const flag = proto === 'tcp' ? '-Hltn' : '-Hlun';
      const { stdout } = await ns.exec(['ss', flag, `sport = :${port}`]);
      return stdout.trim() !== '';
    },
    { timeoutMs: 15_000, intervalMs: 100, what: `${proto} listener on port ${port} in ${ns.name}` },
  );
}

/** `nc -l -k PORT`: a TCP listener taking connection after connection (prints what it receives). */
export async function tcpListen(ns: Namespace, port: number, logName?: string): Promise<LabProcess> {
  const p = ns.spawn('nc', ['-4', '-n', '-l', '-k', String(port)], logName ? { logName } : {});
  await waitListening(ns, 'tcp', port);
  return p;
}

/**
 * `nc -u -l -k PORT`: a UDP listener that prints every datagram, from any sender (`-k` keeps the
 * socket unconnected).
 */
export async function udpListen(ns: Namespace, port: number, logName?: string): Promise<LabProcess> {
  const p = ns.spawn('nc', ['-4', '-n', '-u', '-l', '-k', String(port)], logName ? { logName } : {});
  await waitListening(ns, 'udp', port);
  return p;
}

/** `nc -z -w WAIT ADDR PORT`: true if a TCP connection opens within `waitS` seconds; never throws. */
export async function tcpConnects(ns: Namespace, address: string, port: number, waitS = 2): Promise<boolean> {
  try {
    await exec(ns.name, ['nc', '-4', '-n', '-z', '-w', String(waitS), address, String(port)], {
      timeoutMs: (waitS + 10) * 1000,
    });
    return true;
  } catch {
    return false;
  }
}

/** Sends `text` as one UDP datagram with `nc -u` (which exits after `waitS` idle seconds). */
export async function udpSend(
  ns: Namespace,
  address: string,
  port: number,
  text: string,
  waitS = 1,
): Promise<void> {
  await exec(ns.name, ['nc', '-4', '-n', '-u', '-w', String(waitS), address, String(port)], {
    input: `${text}\n`,
    timeoutMs: (waitS + 10) * 1000,
  });
}

/**
 * A TCP server (node): echoes what each client sends and, every `tickMs`, writes a tick line of its
 * own, so a socket whose flow was cut learns it from its own next write. Prints
 * `listening PORT`, `accepted IP:PORT`, `closed IP:PORT CODE TIME`.
 */
const STREAM_SERVER_JS = `
const net = require('node:net');
const port = Number(process.argv[1]);
const tickMs = Number(process.argv[2]);
const srv = net.createServer((s) => {
  const who = s.remoteAddress + ':' + s.remotePort;
  console.log('accepted ' + who);
  const t = setInterval(() => s.write('tick\\n'), tickMs);
  s.on('data', (d) => s.write(d));
  let done = false;
  const end = (why) => { if (done) return; done = true; clearInterval(t); console.log('closed ' + who + ' ' + why + ' ' + Date.now()); };
  s.on('error', (e) => end(e.code || e.message));
  s.on('close', () => end('close'));
});
srv.listen(port, '0.0.0.0', () => console.log('listening ' + port));
`;

/**
 * A TCP client (node) that writes a line every `everyMs` and prints `connected LOCALPORT`, then
 * `rx BYTES TIME` whenever it received more, and `closed CODE TIME` once the connection ends (it
 * exits then).
 */
const STREAM_CLIENT_JS = `
const net = require('node:net');
const [host, port, everyMs] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let rx = 0;
let reported = 0;
const s = net.connect({ host, port }, () => console.log('connected ' + s.localPort + ' ' + Date.now()));
const w = setInterval(() => { if (s.writable) s.write('data ' + Date.now() + '\\n'); }, everyMs);
const r = setInterval(() => { if (rx !== reported) { reported = rx; console.log('rx ' + rx + ' ' + Date.now()); } }, 100);
s.on('data', (d) => { rx += d.length; });
let done = false;
const end = (why) => {
  if (done) return;
  done = true;
  clearInterval(w);
  clearInterval(r);
  console.log('closed ' + why + ' ' + Date.now());
  process.exit(0);
};
s.on('error', (e) => end(e.code || e.message));
s.on('close', () => end('close'));
`;

export async function startStreamServer(ns: Namespace, port: number, tickMs = 200): Promise<LabProcess> {
  const p = ns.spawn('node', ['-e', STREAM_SERVER_JS, String(port), String(tickMs)], {
    logName: `stream-server-${ns.name}-${port}`,
  });
  await p.waitForLine(/^listening /, 15_000);
  return p;
}

/** One long-running connection: resolves once it is connected and has received data. */
export async function startStreamClient(
  ns: Namespace,
  address: string,
  port: number,
  everyMs = 100,
): Promise<StreamClient> {
  const p = ns.spawn('node', ['-e', STREAM_CLIENT_JS, address, String(port), String(everyMs)], {
    logName: `stream-client-${ns.name}-${address}-${port}`,
  });
  const client = new StreamClient(p);
  await p.waitForLine(/^connected /, 30_000);
  await waitFor(() => client.lastRx() !== null, {
    timeoutMs: 15_000,
    intervalMs: 50,
    what: `data on ${address}:${port}`,
  });
  return client;
}

export class StreamClient {
  constructor(readonly process: LabProcess) {}

  /** The client's local port (the server side logs the flow as `IP:PORT`). */
  get localPort(): number | null {
    for (const l of this.process.lines) {
      const m = /^connected (\d+) /.exec(l);
      if (m) return Number(m[1]);
    }
    return null;
  }

  /** Time (ms since the epoch) the client saw its connection end, and how; null while it lasts. */
  closed(): { at: number; why: string } | null {
    for (const l of this.process.lines) {
      const m = /^closed (\S+) (\d+)$/.exec(l);
      if (m) return { why: m[1]!, at: Number(m[2]) };
    }
    return null;
  }

  /** The last `rx` report: bytes received so far and when. */
  lastRx(): { bytes: number; at: number } | null {
    let last: { bytes: number; at: number } | null = null;
    for (const l of this.process.lines) {
      const m = /^rx (\d+) (\d+)$/.exec(l);
      if (m) last = { bytes: Number(m[1]), at: Number(m[2]) };
    }
    return last;
  }

  stop(): Promise<void> {
    return this.process.stop(2_000);
  }
}
