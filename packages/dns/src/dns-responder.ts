import * as dnsPacket from 'dns-packet';
import { type Query, RCODE, type Reply, truncated, type ZoneAnswerer } from './zone-answerer';

/** The DNS header: id, flags, four counts. */
const HEADER_BYTES = 12;
const QR = 0x8000;
/** The opcode bits of the flags word, kept in a reply to an unreadable query. */
const OPCODE_BITS = 0x7800;

export type Transport = 'udp' | 'tcp';
export type Unanswered = 'malformed' | 'not-a-query';

/** An encoded reply, and the same cut to its header and question with TC set (a rate-limit slip). */
export interface Response {
  wire: Buffer;
  truncated(): Buffer;
}

/**
 * Bytes in, bytes out: one DNS message decoded with dns-packet, answered, encoded. A message that
 * does not decode gets FORMERR when its header is readable and nothing otherwise; nothing a client
 * sends makes it throw.
 */
export class DnsResponder {
  constructor(private readonly answerer: ZoneAnswerer) {}

  /** The reply, or why there is none. */
  respond(msg: Buffer, source: string, transport: Transport): Response | Unanswered {
    if (msg.length < HEADER_BYTES) return 'malformed';
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    if (flags & QR) return 'not-a-query';
    let query: Query;
    try {
      const p = dnsPacket.decode(msg);
      query = { id, flags, questions: p.questions ?? [], additionals: p.additionals ?? [] };
    } catch {
      return response(bare(id, flags, RCODE.FORMERR));
    }
    // A name that would not survive being written back (a dot or a byte outside printable ASCII
    // inside a label, a label over 63 bytes) is in no zone of ours: FORMERR, without echoing it.
    if (!query.questions.every((q) => writableName(q.name))) return response(bare(id, flags, RCODE.FORMERR));
    let reply: Reply | null;
    try {
      reply = this.answerer.answer(query, source, transport);
    } catch {
      reply = bare(id, flags, RCODE.SERVFAIL);
    }
    return reply ? response(reply) : 'not-a-query';
  }
}

/** The first question's name, or undefined when the message does not decode or asks nothing. */
export function questionName(msg: Buffer): string | undefined {
  try {
    return dnsPacket.decode(msg).questions?.[0]?.name;
  } catch {
    return undefined;
  }
}

function response(reply: Reply): Response {
  return {
    wire: encodeFitting(reply),
    truncated: () => encodeFitting({ packet: truncated(reply), maxBytes: reply.maxBytes }),
  };
}

const LABEL = /^[\x21-\x2d\x2f-\x7e]{1,63}$/;

function writableName(name: string): boolean {
  if (name === '' || name === '.') return true;
  const labels = name.replace(/\.$/, '').split('.');
  return name.length <= 253 && labels.every((l) => LABEL.test(l));
}

/** A reply with the header only: the id, the opcode, an rcode. */
function bare(id: number, flags: number, rcode: number): Reply {
  return { packet: { type: 'response', id, flags: (flags & OPCODE_BITS) | rcode }, maxBytes: 512 };
}

/**
 * The reply encoded, or its truncated form when it is larger than the client takes; SERVFAIL
 * without the question if even that cannot be encoded (a name dns-packet decodes but will not write).
 */
export function encodeFitting(reply: Reply): Buffer {
  try {
    const wire = dnsPacket.encode(reply.packet);
    return wire.length <= reply.maxBytes ? wire : dnsPacket.encode(truncated(reply));
  } catch {
    const { id = 0, flags = 0 } = reply.packet;
    return dnsPacket.encode({ type: 'response', id, flags: (flags & OPCODE_BITS) | RCODE.SERVFAIL });
  }
}
