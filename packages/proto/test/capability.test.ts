import {
  CAPABILITY_VERSION,
  CapabilityFallback,
  capabilityRefusal,
  isVersionRefusal,
  MIN_CAPABILITY_VERSION,
} from '../src';

const a = { url: 'wss://a:8443/', address: '192.0.2.1' };
const a2 = { url: 'wss://a:8443/', address: '192.0.2.2' };

describe('capability versions', () => {
  it('a broker serves every version from the minimum up, and names both when it refuses', () => {
    for (const v of [MIN_CAPABILITY_VERSION, CAPABILITY_VERSION, CAPABILITY_VERSION + 5])
      expect(capabilityRefusal(v)).toBeUndefined();
    expect(capabilityRefusal(MIN_CAPABILITY_VERSION - 1)).toBe(
      `protocol version ${MIN_CAPABILITY_VERSION - 1} is too old: this broker speaks capability version ` +
        `${CAPABILITY_VERSION} and serves ${MIN_CAPABILITY_VERSION} and newer`,
    );
  });

  it('recognises an older broker’s HTTP refusal of the version, and nothing else', () => {
    expect(isVersionRefusal(400, 'protocol_mismatch', 'x')).toBe(true);
    expect(isVersionRefusal(400, undefined, 'protocol version 2 not supported (broker speaks 1)')).toBe(true);
    expect(isVersionRefusal(426, undefined, 'protocol version 2 not supported')).toBe(true);
    expect(isVersionRefusal(400, 'bad_request', 'hostname: required')).toBe(false);
    expect(isVersionRefusal(401, 'protocol_mismatch', 'protocol version')).toBe(false);
  });

  it('falls back per broker instance, once, and forgets it when that broker announces a version', () => {
    const fallbacks: string[] = [];
    const f = new CapabilityFallback((broker) => fallbacks.push(broker));
    expect(f.helloVersion(a)).toBe(CAPABILITY_VERSION);
    expect(f.refused()).toBe(true);
    expect(fallbacks).toEqual(['wss://a:8443/ (192.0.2.1)']);
    expect(f.helloVersion(a)).toBe(1);
    expect(f.refused()).toBe(false); // 1 refused too: nothing lower to try
    expect(f.helloVersion(a2)).toBe(CAPABILITY_VERSION); // another instance is not tainted
    expect(f.helloVersion(a)).toBe(1);
    f.announced(undefined); // a broker of version 1 announces nothing
    expect(f.helloVersion(a)).toBe(1);
    f.announced(CAPABILITY_VERSION);
    expect(f.helloVersion(a)).toBe(CAPABILITY_VERSION);
    expect(fallbacks).toHaveLength(1);
    expect(new CapabilityFallback().helloVersion(null)).toBe(CAPABILITY_VERSION);
  });
});
