import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns';
import { createServer, isIP, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import type { Response, Transport, Unanswered } from './dns-responder';
import { ResponseLimiter } from './response-limiter';

/** A TCP client gets this long between queries, and at most this many connections are open. */
const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 1024;
/** Answers a TCP client may leave unread before it is dropped. */
const MAX_TCP_UNREAD_BYTES = 1 << 20;
/** Tries at a free port shared by UDP and TCP (port 0). */
const BIND_ATTEMPTS = 20;

/** Makes the answer to one message: at once (DnsResponder) or later (a stub forwarding upstream). */
export interface DnsHandler {
  respond(
    msg: Buffer,
    source: string,
    transport: Transport,
  ): Response | Unanswered | Promise<Response | Unanswered>;
}

/** Where socket errors go (a pino logger fits). */
export interface DnsServerLog {
  warn(obj: object, msg: string): void;
}

export interface DnsServerCounters {
  /** Queries answered, by transport. */
  answered(transport: 'udp' | 'tcp'): void;
  /** Packets that got no answer: undecodable without an id, responses, rate limited. */
  dropped(reason: Unanswered | 'rate-limited'): void;
}

/**
 * Counts in plain numbers, read when metrics are scraped: a labelled metric's increment per query
 * costs a tenth of the server's rate.
 */
export class DnsCounts implements DnsServerCounters {
  readonly answeredBy = { udp: 0, tcp: 0 };
  readonly droppedBy = new Map<Unanswered | 'rate-limited', number>();

  answered(transport: 'udp' | 'tcp'): void {
    this.answeredBy[transport]++;
  }

  dropped(reason: Unanswered | 'rate-limited'): void {
    this.droppedBy.set(reason, (this.droppedBy.get(reason) ?? 0) + 1);
  }
}

/**
 * A DNS server's I/O: UDP (rate limited per source network) and TCP (two-byte length framing,
 * RFC 7766), both on one host and port; the handler makes the answers.
 */
export class DnsServer {
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<TcpSocket>();

  constructor(
    private readonly handler: DnsHandler,
    private readonly log: DnsServerLog,
    /** Null: no rate limiting (a stub only its own host asks, a benchmark). */
    private readonly limiter: ResponseLimiter | null = new ResponseLimiter(),
    private readonly counters?: DnsServerCounters,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Binds UDP and TCP on one port. With port 0 the TCP side takes whatever UDP got, and that number
   * may already be a TCP port (outgoing connections use the same range): then both try again.
   */
  async listen(host: string, port: number): Promise<{ port: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.bindBoth(host, port);
      } catch (err) {
        await this.close();
        const taken = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (port !== 0 || !taken || attempt >= BIND_ATTEMPTS) throw err;
      }
    }
  }

  protected async bindBoth(host: string, port: number): Promise<{ port: number }> {
    const family = isIPv6(host) ? 6 : 4;
    const udp = createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      reuseAddr: false,
      // Answers go to the address a query came from, always a literal: no resolver round (and the
      // tick it takes) per datagram. A host name to listen on is still looked up.
      lookup: (address, opts, callback) => {
        const literal = isIP(address);
        if (literal) callback(null, address, literal);
        else lookup(address, opts, callback);
      },
    });
    this.udp = udp;
    udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (err) => this.log.warn({ err: err.message }, 'dns udp socket error'));
    const bound = udp.address().port;
    const tcp = createServer((socket) => this.onConnection(socket));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(bound, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    return { port: bound };
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    const { udp, tcp } = this;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([
      new Promise<void>((resolve) => {
        try {
          udp ? udp.close(() => resolve()) : resolve();
        } catch {
          resolve(); // never bound
        }
      }),
      new Promise<void>((resolve) => (tcp?.listening ? tcp.close(() => resolve()) : resolve())),
    ]);
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    // Limited before any work: a flood from one network costs a map lookup per packet.
    const verdict = this.limiter?.verdict(rinfo.address, this.now()) ?? 'send';
    if (verdict === 'drop') {
      this.counters?.dropped('rate-limited');
      return;
    }
    const out = this.handler.respond(msg, rinfo.address, 'udp');
    if (out instanceof Promise) {
      const udp = this.udp;
      void out.then(
        (o) => {
          // Closed (or listening anew) while the answer was made: nobody to send it from.
          if (udp === this.udp) this.sendUdp(udp, o, verdict, rinfo);
        },
        () => this.counters?.dropped('malformed'),
      );
    } else {
      this.sendUdp(this.udp, out, verdict, rinfo);
    }
  }

  private sendUdp(
    udp: Socket | undefined,
    out: Response | Unanswered,
    verdict: 'send' | 'slip',
    rinfo: RemoteInfo,
  ): void {
    if (typeof out === 'string') {
      this.counters?.dropped(out);
      return;
    }
    try {
      // A slip: the header and question only, truncated, so a real client retries over TCP.
      udp?.send(verdict === 'slip' ? out.truncated() : out.wire, rinfo.port, rinfo.address);
      this.counters?.answered('udp');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'dns answer not sent');
    }
  }

  private onConnection(socket: TcpSocket): void {
    this.connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0);
        if (pending.length < 2 + size) break;
        const msg = pending.subarray(2, 2 + size);
        pending = pending.subarray(2 + size);
        const out = this.handler.respond(msg, socket.remoteAddress ?? '', 'tcp');
        if (out instanceof Promise) {
          // Answers may go out of order (RFC 7766 6.2.1.1): the id pairs them with their query.
          void out.then(
            (o) => this.sendTcp(socket, o),
            () => socket.destroy(),
          );
        } else if (!this.sendTcp(socket, out)) return;
      }
    });
  }

  /** Frames and writes one answer; false when the connection was dropped. */
  private sendTcp(socket: TcpSocket, out: Response | Unanswered): boolean {
    if (socket.destroyed) return false;
    if (typeof out === 'string') {
      this.counters?.dropped(out);
      socket.destroy(); // garbage on a stream: nothing after it can be trusted to be framed
      return false;
    }
    const wire = out.wire;
    const framed = Buffer.alloc(2 + wire.length);
    framed.writeUInt16BE(wire.length, 0);
    wire.copy(framed, 2);
    socket.write(framed);
    this.counters?.answered('tcp');
    // A client that sends and never reads would make us hold its answers without end.
    if (socket.writableLength > MAX_TCP_UNREAD_BYTES) {
      socket.destroy();
      return false;
    }
    return true;
  }
}
