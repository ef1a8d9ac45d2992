import type { Answer, Packet, Question } from 'dns-packet';

/** What the answerer needs to know about the zone's accounts and devices (ZoneRecords holds it). */
export interface ZoneView {
  /** Serial of the apex's SOA: it changes when accounts come or go. */
  readonly apexSerial: number;
  /** The account labelled `label` (lower case). */
  account(label: string): AccountView | undefined;
  /** Moves whenever any answer may change (absent: the view never changes). */
  readonly generation?: number;
}

export interface AccountView {
  /** Its SOA serial: the account's netmap serial, which moves with every change of its devices. */
  readonly serial: number;
  /** Mesh-only: answered only to `mayAsk` sources. */
  readonly meshOnly: boolean;
  /** The overlay address of the device named `label` (lower case). */
  address(label: string): string | undefined;
  /** Whether a query from this address may see a mesh-only account. */
  mayAsk(source: string): boolean;
}

export interface AnswererOptions {
  /** The zone, lower case, without a trailing dot (`trellis.example`). */
  zone: string;
  /** TTL of every record, and the SOA's minimum (negative caching). */
  ttl: number;
  /** Host names of the servers for the NS records (the first is the SOA's MNAME). */
  nameServers: readonly string[];
  /** The SOA's RNAME, as a name (`hostmaster.trellis.example`). */
  hostmaster: string;
}

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** EDNS extended RCODE 16 (its upper 8 bits go in the OPT record). */
const BADVERS = 16;
const OPCODE_QUERY = 0;
const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
/** The UDP size we advertise and answer up to (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
const PLAIN_UDP_SIZE = 512;

/** A query as the server read it: the parts of the header dns-packet does not keep in `flags`. */
export interface Query {
  id: number;
  /** The raw header flags word (QR, opcode, RD…). */
  flags: number;
  questions: readonly Question[];
  additionals: readonly Answer[];
}

/** A response to encode, and the size it must fit in (else it goes out truncated). */
export interface Reply {
  packet: Packet;
  maxBytes: number;
  /** It depends on who asked (a mesh-only account): not to be reused for another source. */
  sourceDependent?: boolean;
}

/**
 * The authoritative answers for `<device>.<account>.<zone>`: a sans-IO core, a query in and a
 * response out (null: no response at all, e.g. for a stray response packet). Not a resolver:
 * names outside the zone are REFUSED. Every account is its own zone below the apex (SOA and NS).
 */
export class ZoneAnswerer {
  private readonly zone: string;
  private readonly suffix: string;

  constructor(
    private readonly opts: AnswererOptions,
    private readonly view: ZoneView,
  ) {
    this.zone = opts.zone.toLowerCase();
    this.suffix = `.${this.zone}`;
  }

  answer(q: Query, source: string, transport: 'udp' | 'tcp'): Reply | null {
    if (q.flags & 0x8000) return null; // a response: never answer one
    const opt = q.additionals.find((a) => a.type === 'OPT') as
      | { udpPayloadSize?: number; ednsVersion?: number }
      | undefined;
    const maxBytes =
      transport === 'tcp'
        ? 65_535
        : opt
          ? Math.max(PLAIN_UDP_SIZE, Math.min(opt.udpPayloadSize ?? PLAIN_UDP_SIZE, EDNS_UDP_SIZE))
          : PLAIN_UDP_SIZE;
    const reply: Replier = (rcode, parts = {}, authoritative = false) => {
      const flags = (q.flags & FLAG_RD) | (authoritative ? FLAG_AA : 0) | (rcode & 0xf);
      const additionals: Answer[] = [];
      if (opt) {
        additionals.push({
          type: 'OPT',
          name: '.',
          udpPayloadSize: EDNS_UDP_SIZE,
          extendedRcode: rcode >> 4,
          ednsVersion: 0,
          flags: 0,
          options: [],
        } as unknown as Answer);
      }
      const packet: Packet = {
        type: 'response',
        id: q.id,
        flags,
        questions: q.questions.slice(0, 1) as Question[],
        answers: [],
        authorities: [],
        ...parts,
        additionals,
      };
      return { packet, maxBytes };
    };
    if (opt && (opt.ednsVersion ?? 0) > 0) return reply(BADVERS);
    if (((q.flags >> 11) & 0xf) !== OPCODE_QUERY) return reply(RCODE.NOTIMP);
    const question = q.questions[0];
    if (q.questions.length !== 1 || !question) return reply(RCODE.FORMERR);
    if ((question.class ?? 'IN') !== 'IN') return reply(RCODE.REFUSED);
    const name = question.name.toLowerCase().replace(/\.$/, '');
    if (name !== this.zone && !name.endsWith(this.suffix)) return reply(RCODE.REFUSED);
    const labels = name === this.zone ? [] : name.slice(0, -this.suffix.length).split('.');
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const from = source.startsWith('::ffff:') ? source.slice(7) : source;
    const out = this.inZone(question, labels, from, reply);
    const account = labels.length > 0 ? this.view.account(labels[labels.length - 1]!) : undefined;
    return account?.meshOnly ? { ...out, sourceDependent: true } : out;
  }

  /** See ZoneView.generation. */
  get generation(): number {
    return this.view.generation ?? 0;
  }

  private inZone(question: Question, labels: string[], source: string, reply: Replier): Reply {
    // dns-packet's type list lacks ANY (255), which it decodes as 'ANY' all the same.
    const type: string = question.type;
    const apexSoa = () => this.soa(this.zone, this.view.apexSerial);
    if (labels.length === 0) return this.records(question, apexSoa(), reply);
    const accountLabel = labels[labels.length - 1]!;
    const account = this.view.account(accountLabel);
    if (!account) return reply(RCODE.NXDOMAIN, { authorities: [apexSoa()] }, true);
    if (account.meshOnly && !account.mayAsk(source)) return reply(RCODE.REFUSED);
    const accountZone = `${accountLabel}.${this.zone}`;
    const accountSoa = () => this.soa(accountZone, account.serial);
    if (labels.length === 1) return this.records(question, accountSoa(), reply);
    const address = labels.length === 2 ? account.address(labels[0]!) : undefined;
    if (address === undefined) return reply(RCODE.NXDOMAIN, { authorities: [accountSoa()] }, true);
    // ANY gets the one record there is (RFC 8482): no amplification.
    if (type === 'A' || type === 'ANY') {
      const a = { type: 'A', name: question.name, ttl: this.opts.ttl, data: address } as Answer;
      return reply(RCODE.NOERROR, { answers: [a] }, true);
    }
    return reply(RCODE.NOERROR, { authorities: [accountSoa()] }, true);
  }

  /** At a zone's apex (the zone itself or an account): SOA and NS; anything else is NODATA. */
  private records(question: Question, soa: Answer, reply: Replier): Reply {
    const named = (a: Answer) => ({ ...a, name: question.name }) as Answer;
    const type: string = question.type;
    if (type === 'SOA' || type === 'ANY') return reply(RCODE.NOERROR, { answers: [named(soa)] }, true);
    if (type === 'NS') {
      const answers = this.opts.nameServers.map(
        (ns) => ({ type: 'NS', name: question.name, ttl: this.opts.ttl, data: ns }) as Answer,
      );
      return reply(RCODE.NOERROR, { answers }, true);
    }
    return reply(RCODE.NOERROR, { authorities: [soa] }, true);
  }

  private soa(owner: string, serial: number): Answer {
    const ttl = this.opts.ttl;
    return {
      type: 'SOA',
      name: owner,
      ttl,
      data: {
        mname: this.opts.nameServers[0] ?? this.zone,
        rname: this.opts.hostmaster,
        serial: serial >>> 0,
        refresh: 3600,
        retry: 600,
        expire: 86_400,
        minimum: ttl,
      },
    } as Answer;
  }
}

/** Makes the reply to the query at hand: its rcode, records, and whether it is authoritative. */
type Replier = (rcode: number, parts?: Partial<Packet>, authoritative?: boolean) => Reply;

/** A reply that does not fit: the header and question only, with TC set (the client retries over TCP). */
export function truncated(reply: Reply): Packet {
  const p = reply.packet;
  return { ...p, flags: (p.flags ?? 0) | FLAG_TC, answers: [], authorities: [] };
}
