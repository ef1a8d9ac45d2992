import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { queryBytes } from './dns-zone';

export type DnsReply = ReturnType<typeof dnsPacket.decode> & { rcode: number };

const withRcode = (wire: Buffer): DnsReply => ({
  ...dnsPacket.decode(wire),
  rcode: wire.readUInt16BE(2) & 0xf,
});

/** One query over UDP to 127.0.0.1:port; rejects after 2 s without an answer. */
export function askUdp(port: number, name: string, type = 'A', edns?: number): Promise<DnsReply> {
  const s = createSocket('udp4');
  return new Promise<DnsReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no UDP answer for ${name}`)), 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      resolve(withRcode(m));
    });
    s.send(queryBytes(name, type, { edns: edns ?? false }), port, '127.0.0.1');
  }).finally(() => s.close());
}

/** Queries over one TCP connection (two-byte length framing), answered in order. */
export function askTcp(port: number, queries: Array<[string, string]>): Promise<DnsReply[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const out: DnsReply[] = [];
    let pending = Buffer.alloc(0);
    socket.on('connect', () => {
      for (const [name, type] of queries) {
        const q = queryBytes(name, type);
        const framed = Buffer.alloc(2 + q.length);
        framed.writeUInt16BE(q.length, 0);
        q.copy(framed, 2);
        socket.write(framed);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const size = pending.readUInt16BE(0);
        out.push(withRcode(pending.subarray(2, 2 + size)));
        pending = pending.subarray(2 + size);
      }
      if (out.length === queries.length) {
        socket.end();
        resolve(out);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error('no TCP answer'));
    });
  });
}
