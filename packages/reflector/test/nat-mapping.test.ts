import { classifyNatMapping, type Observation } from '@trellis/reflector';

const seen = (endpoint: string, at: number, publicKey = 'key-a'): Observation => {
  const [address, port] = endpoint.split(':');
  return { publicKey, endpoint, address: address!, port: Number(port), at, via: 'initiation' };
};

describe('classifyNatMapping', () => {
  it('same public ip:port at both reflectors is endpoint-independent, different is endpoint-dependent', () => {
    expect(classifyNatMapping(seen('203.0.113.5:4000', 0), seen('203.0.113.5:4000', 500))).toBe(
      'endpoint-independent',
    );
    expect(classifyNatMapping(seen('203.0.113.5:4000', 0), seen('203.0.113.5:4001', 500))).toBe(
      'endpoint-dependent',
    );
  });

  it('is unknown without two recent observations of the same device', () => {
    expect(classifyNatMapping(seen('203.0.113.5:4000', 0), undefined)).toBe('unknown');
    expect(classifyNatMapping(seen('203.0.113.5:4000', 0), seen('203.0.113.5:4000', 0, 'key-b'))).toBe(
      'unknown',
    );
    expect(classifyNatMapping(seen('203.0.113.5:4000', 0), seen('203.0.113.5:4000', 61_000))).toBe('unknown');
    expect(
      classifyNatMapping(seen('203.0.113.5:4000', 0), seen('203.0.113.5:4000', 61_000), {
        maxSkewMs: 120_000,
      }),
    ).toBe('endpoint-independent');
  });
});
