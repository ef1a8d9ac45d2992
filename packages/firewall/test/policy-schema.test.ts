import { AccessRules } from '@trellis/proto';
import fc from 'fast-check';
import { type InboundPolicy, normalizeInbound } from '../src';

// normalizeInbound checks access rules by hand (the schema parse was the slowest part of an apply
// with 1,000 peers); it must accept exactly what @trellis/proto's AccessRules schema accepts.

const port = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 65535 }), weight: 8 },
  { arbitrary: fc.constantFrom(0, -1, 65536, 1.5, Number.NaN), weight: 1 },
);
const span = fc.oneof(
  { arbitrary: fc.tuple(port, port).map(([a, b]) => (a <= b ? [a, b] : [b, a])), weight: 8 },
  { arbitrary: fc.tuple(port, port), weight: 2 },
  { arbitrary: fc.oneof(fc.array(port, { maxLength: 3 }), fc.jsonValue()), weight: 1 },
);
const nearlyValidRule = fc.record(
  {
    proto: fc.constantFrom('tcp', 'udp', 'icmp', undefined, 'sctp'),
    ports: fc.oneof(
      { arbitrary: fc.array(span, { minLength: 1, maxLength: 4 }), weight: 6 },
      { arbitrary: fc.constant([]), weight: 1 },
    ),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const rule = fc.oneof(
  { arbitrary: nearlyValidRule.map(({ extra, ...r }) => r), weight: 8 },
  { arbitrary: nearlyValidRule, weight: 1 },
  { arbitrary: fc.jsonValue(), weight: 1 },
);
const validSpan = fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }));
const validRule = fc.oneof(
  fc.constant({}),
  fc.constant({ proto: 'icmp' }),
  fc.record({ proto: fc.constantFrom('tcp', 'udp') }),
  fc.record({
    proto: fc.constantFrom('tcp', 'udp'),
    ports: fc.array(
      validSpan.map(([a, b]) => (a <= b ? [a, b] : [b, a])),
      { minLength: 1, maxLength: 4 },
    ),
  }),
);
const rules = fc.oneof(
  { arbitrary: fc.array(validRule, { maxLength: 5 }), weight: 4 },
  { arbitrary: fc.array(rule, { maxLength: 5 }), weight: 5 },
  { arbitrary: fc.jsonValue(), weight: 1 },
);

function handAccepts(allow: unknown): boolean {
  const policy = {
    interfaceName: 'wg0',
    selfAddress: '100.64.0.1',
    peers: [{ address: '100.64.0.2', allow }],
  };
  try {
    normalizeInbound(policy as unknown as InboundPolicy);
    return true;
  } catch {
    return false;
  }
}

describe('the hand-written access rule check', () => {
  it('agrees with the AccessRules schema', () => {
    fc.assert(
      fc.property(rules, (allow) => {
        expect(handAccepts(allow)).toBe(AccessRules.safeParse(allow).success);
      }),
      { numRuns: 1500 },
    );
  });

  it('agrees on spans at the limits', () => {
    const many = Array.from({ length: 257 }, (_, i): [number, number] => [i + 1, i + 1]);
    for (const allow of [
      [{ proto: 'tcp', ports: many }],
      [{ proto: 'tcp', ports: many.slice(0, 256) }],
      [{}, {}, {}, {}, {}],
    ]) {
      expect(handAccepts(allow)).toBe(AccessRules.safeParse(allow).success);
    }
  });
});
