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

/** Encoded answers kept; past it the cache starts over. */
const MAX_CACHED = 50_000;
/**
 * Only queries this short are kept (keyed by their bytes): a query may carry any padding, and
 * 50,000 keys of 64 KB each would be gigabytes. Real queries are well under it.
 */
const MAX_CACHED_QUERY_BYTES = 512;

interface Cached {
  wire: Buffer;
  reply: Reply;
}

/**
 * Bytes in, bytes out: one DNS message decoded with dns-packet, answered, encoded. A message that
 * does not decode gets FORMERR when its header is readable and nothing otherwise; nothing a client
 * sends makes it throw.
 *
 * The same query (every byte but the id) gets the same answer until the zone changes, so answers
 * are kept encoded, keyed by those bytes, and reused with the new id: decoding and encoding cost
 * three quarters of a query otherwise (`pnpm bench dns`). Answers that depend on who asks are not.
 */
export class DnsResponder {
  /** By transport: a UDP answer may be truncated where the TCP one is whole. */
  private readonly cache = { udp: new Map<string, Cached>(), tcp: new Map<string, Cached>() };
  private cacheGeneration = 0;

  constructor(private readonly answerer: ZoneAnswerer) {}

  /** The reply, or why there is none. */
  respond(msg: Buffer, source: string, transport: Transport): Response | Unanswered {
    if (msg.length < HEADER_BYTES) return 'malformed';
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    if (flags & QR) return 'not-a-query';
    const generation = this.answerer.generation;
    if (generation !== this.cacheGeneration) {
      this.cache.udp.clear();
      this.cache.tcp.clear();
      this.cacheGeneration = generation;
    }
    const cache = this.cache[transport];
    const key = msg.length <= MAX_CACHED_QUERY_BYTES ? msg.toString('latin1', 2) : null;
    const hit = key === null ? undefined : cache.get(key);
    if (hit) return withId(hit, id);
    const out = this.answer(msg, id, flags, source, transport);
    if (key !== null && typeof out !== 'string' && out.cacheable && out.reply) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, { wire: out.wire, reply: out.reply });
    }
    return out;
  }

  private answer(
    msg: Buffer,
    id: number,
    flags: number,
    source: string,
    transport: Transport,
  ): (Response & { cacheable?: boolean; reply?: Reply }) | Unanswered {
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
      return response(bare(id, flags, RCODE.SERVFAIL));
    }
    if (!reply) return 'not-a-query';
    return { ...response(reply), cacheable: !reply.sourceDependent, reply };
  }
}

/** A kept answer sent to another query: the same bytes under that query's id. */
function withId(hit: Cached, id: number): Response {
  const wire = Buffer.allocUnsafe(hit.wire.length);
  hit.wire.copy(wire);
  wire.writeUInt16BE(id, 0);
  return {
    wire,
    truncated: () => {
      const t = encodeFitting({ packet: truncated(hit.reply), maxBytes: hit.reply.maxBytes });
      t.writeUInt16BE(id, 0);
      return t;
    },
  };
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
