import { parseEndpoint } from '@trellis/proto';
import { classifyNatMapping, type Observation } from '@trellis/reflector';

const seen = (endpoint: string, at: number, publicKey = 'key-a'): Observation => {
  const { host, port } = parseEndpoint(endpoint)!;
  return { publicKey, endpoint, address: host, port, at, via: 'initiation' };
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

  it('one port at two IPs is not symmetric: no NAT (loopback and LAN address), multi-homing or address pooling', () => {
    // `./scripts/quickstart`: the broker's reflector on 127.0.0.1, the relay's on the machine's address.
    expect(classifyNatMapping(seen('127.0.0.1:51820', 0), seen('192.168.1.20:51820', 200))).toBe(
      'endpoint-independent',
    );
    // A host with two uplinks, one route per reflector; or a NAT with "arbitrary" IP pooling.
    expect(classifyNatMapping(seen('198.51.100.7:51820', 0), seen('203.0.113.5:51820', 200))).toBe(
      'endpoint-independent',
    );
    expect(classifyNatMapping(seen('[2001:db8::5]:51820', 0), seen('203.0.113.5:51820', 200))).toBe(
      'endpoint-independent',
    );
  });

  it('a new port per destination is symmetric whether or not the IPs differ', () => {
    expect(classifyNatMapping(seen('198.51.100.7:4000', 0), seen('203.0.113.5:4001', 200))).toBe(
      'endpoint-dependent',
    );
  });

  it('a loopback sighting is the socket itself: a translated port elsewhere does not prove a symmetric NAT', () => {
    // The device runs next to one reflector and reaches the other through a NAT that does not keep
    // ports: the ports differ without saying whether the NAT maps per destination.
    expect(classifyNatMapping(seen('127.0.0.1:51820', 0), seen('203.0.113.5:61000', 200))).toBe('unknown');
    expect(classifyNatMapping(seen('[::1]:51820', 0), seen('203.0.113.5:61000', 200))).toBe('unknown');
    // Both on loopback: no NAT anywhere, so different ports would be two sockets; still compared.
    expect(classifyNatMapping(seen('127.0.0.1:51820', 0), seen('127.0.0.2:51821', 200))).toBe(
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
