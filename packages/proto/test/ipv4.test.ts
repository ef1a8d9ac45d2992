import fc from 'fast-check';
import { ipv4CidrWithin, ipv4InCidr, ipv4ToInt, OverlayCidr, parseIpv4Cidr } from '../src/ipv4';

describe('IPv4 prefixes of the overlay', () => {
  it('parses addresses and prefixes, and refuses everything else', () => {
    expect(ipv4ToInt('100.64.0.1')).toBe(0x64400001);
    expect(ipv4ToInt('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['100.64.0', '256.1.1.1', '1.2.3.4\n', ' 1.2.3.4', '01.2.3.4x']) {
      expect(ipv4ToInt(bad)).toBeNull();
    }
    expect(parseIpv4Cidr('100.64.0.0/10')).toEqual({ base: 0x64400000, bits: 10 });
    for (const bad of ['100.64.0.0/33', '100.64.0.0', '100.64.0.0/1/2', '100.64.0.0/10\n', 'a/8']) {
      expect(parseIpv4Cidr(bad)).toBeNull();
    }
  });

  it('knows what lies inside 100.64.0.0/10', () => {
    expect(ipv4InCidr('100.64.0.1', '100.64.0.0/10')).toBe(true);
    expect(ipv4InCidr('100.127.255.255', '100.64.0.0/10')).toBe(true);
    expect(ipv4InCidr('100.128.0.0', '100.64.0.0/10')).toBe(false);
    expect(ipv4InCidr('100.63.255.255', '100.64.0.0/10')).toBe(false);
    expect(ipv4CidrWithin('100.64.3.0/24', '100.64.0.0/10')).toBe(true);
    expect(ipv4CidrWithin('100.64.0.0/9', '100.64.0.0/10')).toBe(false);
    expect(ipv4CidrWithin('0.0.0.0/0', '100.64.0.0/10')).toBe(false);
    expect(OverlayCidr.safeParse('100.64.0.2/32').success).toBe(true);
    expect(OverlayCidr.safeParse('10.0.0.0/8').success).toBe(false);
  });

  it('agrees with the address arithmetic for any address and prefix', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, base, bits) => {
        const shift = 32 - bits;
        const same = shift === 32 || ipv4ToInt(ip)! >>> shift === ipv4ToInt(base)! >>> shift;
        expect(ipv4InCidr(ip, `${base}/${bits}`)).toBe(same);
        // A prefix lies within another exactly when it is as long and its first address is inside.
        expect(ipv4CidrWithin(`${ip}/32`, `${base}/${bits}`)).toBe(same);
      }),
      { seed: 10, numRuns: 5_000 },
    );
  });
});
