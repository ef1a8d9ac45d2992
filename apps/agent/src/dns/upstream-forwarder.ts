import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import type { Response, Transport } from '@trellis/dns';

/** How long one upstream gets before the next one is asked (glibc's own default is 5 s). */
const UPSTREAM_TIMEOUT_MS = 2000;
/** Queries in flight at once; past it a query gets SERVFAIL at once instead of another socket. */
const MAX_IN_FLIGHT = 256;
const QR = 0x8000;
const SERVFAIL = 2;

export interface Upstream {
  address: string;
  port: number;
}

/**
 * Passes a query it does not answer itself to the nameservers the device used before (in order,
 * each for a while), over the transport it came on, and returns their answer unchanged. Each UDP
 * query gets its own socket (a fresh random port) and only a reply with its id is taken.
 */
export class UpstreamForwarder {
  private inFlight = 0;

  constructor(
    readonly upstreams: readonly Upstream[],
    private readonly timeoutMs = UPSTREAM_TIMEOUT_MS,
  ) {}

  async forward(msg: Buffer, transport: Transport): Promise<Response> {
    if (this.inFlight >= MAX_IN_FLIGHT) return answered(servfail(msg));
    this.inFlight++;
    try {
      for (const upstream of this.upstreams) {
        const wire = await (transport === 'udp' ? askUdp : askTcp)(upstream, msg, this.timeoutMs).catch(
          () => null,
        );
        if (wire) return answered(wire);
      }
      return answered(servfail(msg));
    } finally {
      this.inFlight--;
    }
  }
}

function answered(wire: Buffer): Response {
  return { wire, truncated: () => wire };
}

/** The query's header turned into a SERVFAIL response, with its question (what a resolver sends). */
export function servfail(msg: Buffer): Buffer {
  const out = Buffer.from(msg);
  const flags = out.readUInt16BE(2);
  out.writeUInt16BE((flags & 0x7900) | QR | SERVFAIL, 2); // opcode and RD kept
  // Keep the question only: answer, authority and additional counts go to zero, and what followed.
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out.subarray(0, questionEnd(out));
}

/** Where the first question ends (the header alone when there is none or it cannot be read). */
function questionEnd(msg: Buffer): number {
  if (msg.readUInt16BE(4) === 0) return 12;
  let at = 12;
  while (at < msg.length) {
    const len = msg[at]!;
    if (len === 0) return at + 5 <= msg.length ? at + 5 : 12;
    if (len >= 0xc0) return 12; // a pointer in a query's first name: not something to echo
    at += len + 1;
  }
  return 12;
}

function askUdp(upstream: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(upstream.address.replace(/%.*$/, '')) ? 'udp6' : 'udp4');
    const id = msg.readUInt16BE(0);
    let settled = false;
    const done = (err: Error | null, wire?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      err ? reject(err) : resolve(wire!);
    };
    const timer = setTimeout(() => done(new Error('upstream timed out')), timeoutMs);
    socket.on('error', (err) => done(err));
    // Connected: the kernel passes on only datagrams from the upstream's address and port.
    socket.on('message', (reply) => {
      if (reply.length < 12 || reply.readUInt16BE(0) !== id || !(reply.readUInt16BE(2) & QR)) return;
      done(null, reply);
    });
    socket.connect(upstream.port, upstream.address, () => socket.send(msg, (err) => err && done(err)));
  });
}

function askTcp(upstream: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: upstream.address, port: upstream.port });
    const timer = setTimeout(() => done(new Error('upstream timed out')), timeoutMs);
    let settled = false;
    const done = (err: Error | null, wire?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      err ? reject(err) : resolve(wire!);
    };
    let got = Buffer.alloc(0);
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new Error('upstream closed the connection')));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const size = got.length >= 2 ? got.readUInt16BE(0) : Number.POSITIVE_INFINITY;
      if (got.length < 2 + size) return;
      const wire = got.subarray(2, 2 + size);
      const ours = wire.length >= 12 && wire.readUInt16BE(0) === msg.readUInt16BE(0);
      done(ours ? null : new Error('upstream answered another query'), wire);
    });
    const framed = Buffer.alloc(2 + msg.length);
    framed.writeUInt16BE(msg.length, 0);
    msg.copy(framed, 2);
    socket.write(framed);
  });
}
