import * as dnsPacket from 'dns-packet';
import { DnsResponder, type Response } from '../src/dns-responder';
import { answererFor, fakeZone, queryBytes, rcodeOf, ZONE } from './support/dns-zone';

const zone = fakeZone({
  acme: { serial: 41, devices: { laptop: '100.64.0.7', db: '100.64.0.9' } },
  hidden: { serial: 3, meshOnly: true, devices: { cam: '100.64.1.2' }, sources: ['198.51.100.7'] },
});
const responder = new DnsResponder(answererFor(zone));

function ask(
  name: string,
  type: string,
  more: Parameters<typeof queryBytes>[2] = {},
  source = '203.0.113.1',
) {
  const out = responder.respond(queryBytes(name, type, more), source, 'udp');
  if (typeof out === 'string') throw new Error(`no answer: ${out}`);
  return { wire: (out as Response).wire, p: dnsPacket.decode((out as Response).wire) };
}

const AA = dnsPacket.AUTHORITATIVE_ANSWER;

describe('the zone answers', () => {
  it('A for <device>.<account>.<zone>, authoritative, case-insensitive, the question echoed as asked', () => {
    const { p, wire } = ask('LapTop.ACME.trellis.example', 'A');
    expect(rcodeOf(wire)).toBe(0);
    expect(p.id).toBe(4242);
    expect((p.flags ?? 0) & AA).toBe(AA);
    expect((p.flags ?? 0) & dnsPacket.RECURSION_DESIRED).toBe(dnsPacket.RECURSION_DESIRED);
    expect((p.flags ?? 0) & dnsPacket.RECURSION_AVAILABLE).toBe(0);
    expect(p.questions).toEqual([{ name: 'LapTop.ACME.trellis.example', type: 'A', class: 'IN' }]);
    expect(p.answers).toEqual([
      expect.objectContaining({
        name: 'LapTop.ACME.trellis.example',
        type: 'A',
        ttl: 30,
        data: '100.64.0.7',
      }),
    ]);
  });

  it('SOA and NS at the apex and at each account; the account SOA carries its serial', () => {
    const apex = ask(ZONE, 'SOA').p;
    expect(apex.answers?.[0]).toMatchObject({
      type: 'SOA',
      name: ZONE,
      data: { mname: 'ns1.example.net', rname: `hostmaster.${ZONE}`, serial: 1_700_000_000, minimum: 30 },
    });
    const acme = ask(`acme.${ZONE}`, 'SOA').p;
    expect(acme.answers?.[0]).toMatchObject({ type: 'SOA', name: `acme.${ZONE}`, data: { serial: 41 } });
    for (const name of [ZONE, `acme.${ZONE}`]) {
      expect(ask(name, 'NS').p.answers?.map((a) => (a as { data: string }).data)).toEqual([
        'ns1.example.net',
        'ns2.example.net',
      ]);
    }
  });

  it('NXDOMAIN with the SOA of the closest zone for names that do not exist', () => {
    for (const [name, soaOwner] of [
      [`nobody.acme.${ZONE}`, `acme.${ZONE}`],
      [`x.laptop.acme.${ZONE}`, `acme.${ZONE}`],
      [`laptop.nosuch.${ZONE}`, ZONE],
      [`nosuch.${ZONE}`, ZONE],
    ] as const) {
      const { p, wire } = ask(name, 'A');
      expect({ name, rcode: rcodeOf(wire) }).toEqual({ name, rcode: 3 });
      expect(p.answers).toEqual([]);
      expect(p.authorities).toEqual([expect.objectContaining({ type: 'SOA', name: soaOwner })]);
      expect((p.flags ?? 0) & AA).toBe(AA);
    }
  });

  it('NODATA (NOERROR, no answer, the SOA) for other types on a name that exists', () => {
    for (const [name, type] of [
      [`laptop.acme.${ZONE}`, 'AAAA'],
      [`laptop.acme.${ZONE}`, 'MX'],
      [`acme.${ZONE}`, 'A'],
      [ZONE, 'TXT'],
    ] as const) {
      const { p, wire } = ask(name, type);
      expect({ name, type, rcode: rcodeOf(wire), answers: p.answers }).toEqual({
        name,
        type,
        rcode: 0,
        answers: [],
      });
      expect(p.authorities?.[0]?.type).toBe('SOA');
    }
  });

  it('ANY gets one record, never everything (no amplification)', () => {
    expect(ask(`laptop.acme.${ZONE}`, 'ANY').p.answers).toEqual([expect.objectContaining({ type: 'A' })]);
    expect(ask(`acme.${ZONE}`, 'ANY').p.answers).toEqual([expect.objectContaining({ type: 'SOA' })]);
  });

  it('REFUSED outside the zone and for other classes, without the AA flag: not a resolver', () => {
    for (const name of ['example.com', 'trellis.example.com', 'xtrellis.example', '.']) {
      const { p, wire } = ask(name, 'A');
      expect({ name, rcode: rcodeOf(wire), aa: (p.flags ?? 0) & AA }).toEqual({ name, rcode: 5, aa: 0 });
    }
    const chaos = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: `laptop.acme.${ZONE}`, type: 'TXT', class: 'CH' }],
    });
    const out = responder.respond(chaos, '203.0.113.1', 'udp') as Response;
    expect(rcodeOf(out.wire)).toBe(5);
  });

  it("a mesh-only account answers only its devices' addresses", () => {
    expect(rcodeOf(ask(`cam.hidden.${ZONE}`, 'A', {}, '203.0.113.1').wire)).toBe(5);
    const mine = ask(`cam.hidden.${ZONE}`, 'A', {}, '198.51.100.7');
    expect(mine.p.answers).toEqual([expect.objectContaining({ data: '100.64.1.2' })]);
    // An IPv4-mapped source is the same address.
    expect(rcodeOf(ask(`cam.hidden.${ZONE}`, 'A', {}, '::ffff:198.51.100.7').wire)).toBe(0);
  });

  it('EDNS(0): an OPT record back (1232 bytes); a version above 0 gets BADVERS', () => {
    const { p } = ask(`laptop.acme.${ZONE}`, 'A', { edns: 4096 });
    expect(p.additionals).toEqual([expect.objectContaining({ type: 'OPT', udpPayloadSize: 1232 })]);
    expect(ask(`laptop.acme.${ZONE}`, 'A').p.additionals).toEqual([]);
    const v1 = Buffer.from(queryBytes(`laptop.acme.${ZONE}`, 'A', { edns: 1232 }));
    // The OPT record is the last 11 bytes: name (1), type (2), size (2), ext rcode (1), version (1)…
    v1[v1.length - 11 + 6] = 1;
    const out = responder.respond(v1, '203.0.113.1', 'udp') as Response;
    expect(rcodeOf(out.wire)).toBe(16);
  });

  it('NOTIMP for other opcodes, FORMERR for two questions', () => {
    const notify = responder.respond(
      queryBytes(`acme.${ZONE}`, 'SOA', { flags: 4 << 11 }),
      '203.0.113.1',
      'udp',
    ) as Response;
    expect(rcodeOf(notify.wire)).toBe(4);
    const two = responder.respond(queryBytes(`acme.${ZONE}`, 'SOA', { questions: 2 }), '203.0.113.1', 'udp');
    expect(rcodeOf((two as Response).wire)).toBe(1);
  });
});

describe('sizes', () => {
  // Long names and many name servers make an NS answer larger than 512 bytes.
  const many = Array.from({ length: 12 }, (_, i) => `ns${i}.${'long-label-'.repeat(4)}example.net`);
  const big = new DnsResponder(answererFor(zone, many));

  it('a UDP answer larger than the client takes is truncated (TC, no records); TCP gets it whole', () => {
    const out = big.respond(queryBytes(`acme.${ZONE}`, 'NS'), '203.0.113.1', 'udp') as Response;
    const p = dnsPacket.decode(out.wire);
    expect(out.wire.length).toBeLessThanOrEqual(512);
    expect((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE).toBe(dnsPacket.TRUNCATED_RESPONSE);
    expect(p.answers).toEqual([]);
    expect(p.questions).toHaveLength(1);
    const tcp = big.respond(queryBytes(`acme.${ZONE}`, 'NS'), '203.0.113.1', 'tcp') as Response;
    expect(dnsPacket.decode(tcp.wire).answers).toHaveLength(12);
    // With EDNS and a large buffer the same answer fits over UDP.
    const edns = big.respond(
      queryBytes(`acme.${ZONE}`, 'NS', { edns: 4096 }),
      '203.0.113.1',
      'udp',
    ) as Response;
    expect(dnsPacket.decode(edns.wire).answers).toHaveLength(12);
    expect(edns.wire.length).toBeLessThanOrEqual(1232);
  });

  it('the rate-limit slip is the same reply cut to its question, TC set', () => {
    const out = responder.respond(queryBytes(`laptop.acme.${ZONE}`, 'A'), '203.0.113.1', 'udp') as Response;
    const slip = dnsPacket.decode(out.truncated());
    expect((slip.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE).toBe(dnsPacket.TRUNCATED_RESPONSE);
    expect(slip.answers).toEqual([]);
    expect(slip.id).toBe(4242);
  });
});

describe('bad input gets a clean answer or silence', () => {
  const header = (id: number, flags: number, counts: [number, number, number, number]) => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(id, 0);
    b.writeUInt16BE(flags, 2);
    counts.forEach((c, i) => {
      b.writeUInt16BE(c, 4 + 2 * i);
    });
    return b;
  };

  it('shorter than a header, or a response: silence', () => {
    expect(responder.respond(Buffer.alloc(11), '203.0.113.1', 'udp')).toBe('malformed');
    expect(responder.respond(Buffer.alloc(0), '203.0.113.1', 'udp')).toBe('malformed');
    expect(responder.respond(header(1, 0x8000, [1, 0, 0, 0]), '203.0.113.1', 'udp')).toBe('not-a-query');
  });

  it.each([
    ['a count far larger than the packet', header(7, 0, [65535, 65535, 65535, 65535])],
    ['a question cut short', Buffer.concat([header(7, 0, [1, 0, 0, 0]), Buffer.from([5, 0x61, 0x62])])],
    // A name that is only a pointer to itself.
    [
      'a compression pointer loop',
      Buffer.concat([header(7, 0, [1, 0, 0, 0]), Buffer.from([0xc0, 12, 0, 1, 0, 1])]),
    ],
    // Two pointers that point at each other.
    [
      'a two-pointer loop',
      Buffer.concat([header(7, 0, [1, 0, 0, 0]), Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1])]),
    ],
    [
      'a label longer than 63',
      Buffer.concat([header(7, 0, [1, 0, 0, 0]), Buffer.from([64]), Buffer.alloc(70, 0x61)]),
    ],
  ])('%s: FORMERR with the id, or a clean answer', (_what, msg) => {
    const out = responder.respond(msg, '203.0.113.1', 'udp');
    expect(typeof out).not.toBe('string');
    const p = dnsPacket.decode((out as Response).wire);
    expect(p.id).toBe(7);
    expect([0, 1, 3, 5]).toContain(rcodeOf((out as Response).wire));
  });
});

describe('answers kept encoded', () => {
  /** A zone whose one device can be re-addressed, its generation moving as ZoneRecords' does. */
  function changingZone() {
    const devices: Record<string, string> = { laptop: '100.64.0.7' };
    let generation = 0;
    const base = fakeZone({ acme: { serial: 1, devices } });
    const view = {
      apexSerial: base.apexSerial,
      account: (label: string) => base.account(label),
      get generation() {
        return generation;
      },
    };
    return {
      view,
      move(address: string) {
        devices.laptop = address;
        generation++;
      },
    };
  }
  const answerOf = (out: ReturnType<DnsResponder['respond']>) => {
    if (typeof out === 'string') throw new Error(out);
    return out.wire;
  };

  it('the same query under another id gets the same bytes under that id, and the zone moving is seen at once', () => {
    const z = changingZone();
    const r = new DnsResponder(answererFor(z.view));
    const first = answerOf(
      r.respond(queryBytes(`laptop.acme.${ZONE}`, 'A', { id: 1 }), '203.0.113.1', 'udp'),
    );
    const again = answerOf(
      r.respond(queryBytes(`laptop.acme.${ZONE}`, 'A', { id: 2 }), '203.0.113.9', 'udp'),
    );
    expect(again.readUInt16BE(0)).toBe(2);
    expect(again.subarray(2)).toEqual(first.subarray(2));
    z.move('100.64.0.8');
    const moved = dnsPacket.decode(
      answerOf(r.respond(queryBytes(`laptop.acme.${ZONE}`, 'A', { id: 3 }), '203.0.113.1', 'udp')),
    );
    expect(moved.id).toBe(3);
    expect(moved.answers?.[0]).toMatchObject({ data: '100.64.0.8' });
  });

  it('a mesh-only answer is never given to another source', () => {
    const r = new DnsResponder(answererFor(zone));
    const q = queryBytes(`cam.hidden.${ZONE}`, 'A');
    expect(rcodeOf(answerOf(r.respond(q, '198.51.100.7', 'udp')))).toBe(0);
    expect(rcodeOf(answerOf(r.respond(q, '203.0.113.1', 'udp')))).toBe(5);
    expect(rcodeOf(answerOf(r.respond(q, '198.51.100.7', 'udp')))).toBe(0);
  });

  it('kept answers are the answers: any query twice gives the same bytes but the id', () => {
    const r = new DnsResponder(answererFor(zone));
    const fresh = () => new DnsResponder(answererFor(zone));
    const names = [
      `laptop.acme.${ZONE}`,
      `LAPTOP.acme.${ZONE}`,
      `nope.acme.${ZONE}`,
      `acme.${ZONE}`,
      ZONE,
      'example.org',
    ];
    for (const name of names) {
      for (const type of ['A', 'AAAA', 'SOA', 'NS', 'TXT']) {
        for (const edns of [false, 512, 4096] as const) {
          const q = (id: number) => queryBytes(name, type, { id, edns });
          const want = answerOf(fresh().respond(q(7), '203.0.113.1', 'udp'));
          answerOf(r.respond(q(6), '203.0.113.1', 'udp'));
          const got = answerOf(r.respond(q(7), '203.0.113.1', 'udp'));
          expect(got).toEqual(want);
        }
      }
    }
  });
});
