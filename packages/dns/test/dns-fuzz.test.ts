import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { FUZZ_CASES, FUZZ_SEED } from '../../proto/test/support/json-fuzz';
import { DnsResponder } from '../src/dns-responder';
import { answererFor, fakeZone, queryBytes, ZONE } from './support/dns-zone';

const responder = new DnsResponder(
  answererFor(fakeZone({ acme: { serial: 2, devices: { laptop: '100.64.0.7' } } })),
);

const seeds = [
  queryBytes(`laptop.acme.${ZONE}`, 'A'),
  queryBytes(`laptop.acme.${ZONE}`, 'AAAA', { edns: 1232 }),
  queryBytes(`acme.${ZONE}`, 'NS', { edns: 4096 }),
  queryBytes(ZONE, 'SOA'),
  queryBytes('example.com', 'ANY'),
];

/** A seed query with bytes flipped, cut, repeated or spliced in. */
const mutated = fc
  .record({
    seed: fc.constantFrom(...seeds),
    edits: fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant('set' as const),
          at: fc.nat(),
          byte: fc.integer({ min: 0, max: 255 }),
        }),
        fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
        fc.record({
          kind: fc.constant('insert' as const),
          at: fc.nat(),
          bytes: fc.uint8Array({ maxLength: 8 }),
        }),
        // Compression pointers and huge counts, where parsers go wrong.
        fc.record({
          kind: fc.constant('pointer' as const),
          at: fc.nat(),
          to: fc.integer({ min: 0, max: 80 }),
        }),
        fc.record({
          kind: fc.constant('count' as const),
          which: fc.integer({ min: 0, max: 3 }),
          n: fc.nat(65535),
        }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map(({ seed, edits }) => {
    let b = Buffer.from(seed);
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.kind === 'count' ? 0 : e.at % b.length;
      if (e.kind === 'set') b[at] = e.byte;
      else if (e.kind === 'cut') b = b.subarray(0, at);
      else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
      else if (e.kind === 'pointer' && at + 1 < b.length) b.writeUInt16BE(0xc000 | e.to, at);
      else if (e.kind === 'count' && b.length >= 12) b.writeUInt16BE(e.n, 4 + 2 * e.which);
    }
    return b;
  });

describe('the DNS query path under fuzzing', () => {
  it(`answers ${FUZZ_CASES} malformed queries cleanly or not at all, never throwing`, () => {
    let answered = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 4, arbitrary: mutated },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
        ),
        (bytes) => {
          const msg = Buffer.from(bytes);
          for (const transport of ['udp', 'tcp'] as const) {
            const out = responder.respond(msg, '203.0.113.1', transport);
            if (typeof out === 'string') {
              expect(['malformed', 'not-a-query']).toContain(out);
              continue;
            }
            answered++;
            // Whatever went out decodes, answers the same id, and is a response that fits.
            const p = dnsPacket.decode(out.wire);
            expect(p.id).toBe(msg.readUInt16BE(0));
            expect(out.wire.readUInt16BE(2) & 0x8000).toBe(0x8000);
            expect(out.wire.length).toBeLessThanOrEqual(transport === 'udp' ? 1232 : 65_535);
            dnsPacket.decode(out.truncated());
          }
        },
      ),
      { numRuns: FUZZ_CASES, seed: FUZZ_SEED },
    );
    expect(answered).toBeGreaterThan(FUZZ_CASES / 4);
  });
});
