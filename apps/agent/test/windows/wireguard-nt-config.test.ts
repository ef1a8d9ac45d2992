import fc from 'fast-check';
import type { WgConfigUpdate, WgDeviceState, WgPeerUpdate } from '../../src/wireguard/types';
import { UnsafeConfigValueError } from '../../src/wireguard/update-check';
import {
  AF_INET,
  AF_INET6,
  formatIp,
  parseCidr,
  parseEndpointAddress,
  parseIp,
} from '../../src/wireguard/wireguard-nt-addr';
import {
  adapterGuid,
  decodeState,
  encodeState,
  encodeUpdate,
  formatGuid,
  handshakeTicksToUnixSeconds,
  unixSecondsToHandshakeTicks,
} from '../../src/wireguard/wireguard-nt-config';
import {
  InterfaceFlag,
  type NtInterface,
  PeerFlag,
  packConfig,
  unpackConfig,
  WireGuardNtFormatError,
} from '../../src/wireguard/wireguard-nt-struct';
import { expectGolden } from './golden';
import { dumpConfig } from './wireguard-nt-fake';

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');

const FIXED_UPDATE: WgConfigUpdate = {
  privateKey: key(0x40),
  listenPort: 51820,
  fwmark: 0x7472,
  peers: [
    { publicKey: key(0xa1), remove: true },
    {
      publicKey: key(0xb2),
      endpoint: '[2001:db8::7]:41641',
      persistentKeepalive: 25,
      allowedIps: ['100.64.0.3/32', '10.0.0.0/8', 'fd7a:115c:a1e0::/48'],
    },
    { publicKey: key(0xc3), endpoint: '203.0.113.9:51820' },
  ],
};

const FIXED_STATE: WgDeviceState = {
  privateKey: key(0x40),
  listenPort: 51820,
  peers: [
    {
      publicKey: key(0xb2),
      endpoint: '203.0.113.9:3233',
      allowedIps: ['100.64.0.3/32', '::/0'],
      persistentKeepalive: 25,
      lastHandshakeSec: 1_700_000_000,
      rxBytes: 1_929_999_999,
      txBytes: 1_212_111,
    },
    {
      publicKey: key(0xc3),
      endpoint: null,
      allowedIps: [],
      persistentKeepalive: 0,
      lastHandshakeSec: 0,
      rxBytes: 0,
      txBytes: 0,
    },
  ],
};

describe('wireguard-nt configuration buffers (golden files)', () => {
  it('encodes an update: only given fields flagged, removal, REPLACE_ALLOWED_IPS with the list', () => {
    const buf = encodeUpdate(FIXED_UPDATE);
    expectGolden('wireguard-nt-set-update.hex', `${dumpConfig(buf).join('\n')}\n`);
    const nt = unpackConfig(buf);
    expect(nt.flags).toBe(InterfaceFlag.HAS_PRIVATE_KEY | InterfaceFlag.HAS_LISTEN_PORT);
    expect(nt.peers.map((p) => p.flags)).toEqual([
      PeerFlag.HAS_PUBLIC_KEY | PeerFlag.REMOVE,
      PeerFlag.HAS_PUBLIC_KEY |
        PeerFlag.HAS_ENDPOINT |
        PeerFlag.HAS_PERSISTENT_KEEPALIVE |
        PeerFlag.REPLACE_ALLOWED_IPS,
      PeerFlag.HAS_PUBLIC_KEY | PeerFlag.HAS_ENDPOINT,
    ]);
    expect(buf.length).toBe(80 + 3 * 136 + 3 * 24);
    // Hand-checked bytes of the second peer: the endpoint (family 23, port big-endian, address at
    // +8 in the sockaddr) and its first allowed IP.
    const peer = 80 + 136;
    const hex = (at: number, len: number) => buf.subarray(at, at + len).toString('hex');
    expect(hex(peer + 72, 2)).toBe('1900'); // keepalive 25
    expect(hex(peer + 76, 4)).toBe('1700a2a9'); // AF_INET6, port 41641
    expect(hex(peer + 84, 16)).toBe('20010db8000000000000000000000007');
    expect(buf.readUInt32LE(peer + 128)).toBe(3);
    expect(hex(peer + 136, 24)).toBe(`64400003${'00'.repeat(12)}0200200000000000`);
  });

  it('decodes what the driver reports, including handshakes and counters', () => {
    const buf = encodeState(FIXED_STATE);
    expectGolden('wireguard-nt-get-state.hex', `${dumpConfig(buf).join('\n')}\n`);
    expect(decodeState(buf)).toEqual(FIXED_STATE);
  });

  it('an empty device: no key, no port, no peers', () => {
    const empty = packConfig({
      flags: 0,
      listenPort: 0,
      privateKey: Buffer.alloc(32),
      publicKey: Buffer.alloc(32),
      peers: [],
    });
    expect(decodeState(empty)).toEqual({ privateKey: null, listenPort: 0, peers: [] });
  });

  it('rejects truncated buffers and impossible allowed IPs', () => {
    const buf = encodeState(FIXED_STATE);
    expect(() => unpackConfig(buf.subarray(0, 79))).toThrow(WireGuardNtFormatError);
    expect(() => unpackConfig(buf.subarray(0, buf.length - 1))).toThrow(/truncated/);
    const bad = Buffer.from(buf);
    bad.writeUInt8(33, 80 + 136 + 18); // an IPv4 /33
    expect(() => unpackConfig(bad)).toThrow(/prefix length 33/);
    bad.writeUInt16LE(99, 80 + 136 + 16);
    expect(() => unpackConfig(bad)).toThrow(/address family 99/);
  });

  it('refuses unsafe values as the UAPI serializer does', () => {
    const unsafe: WgPeerUpdate[] = [
      { publicKey: key(1), allowedIps: ['100.64.0.2/32,0.0.0.0/0'] },
      { publicKey: key(1), allowedIps: ['100.64.0.2/33'] },
      { publicKey: key(1), endpoint: '10.0.0.2:51820\nremove=true' },
      { publicKey: key(1), persistentKeepalive: 1.5 },
      { publicKey: 'short' },
    ];
    for (const peer of unsafe) expect(() => encodeUpdate({ peers: [peer] })).toThrow(UnsafeConfigValueError);
  });
});

describe('wireguard-nt time, GUID and address helpers', () => {
  it('converts FILETIME handshakes to Unix seconds', () => {
    expect(handshakeTicksToUnixSeconds(0n)).toBe(0);
    expect(handshakeTicksToUnixSeconds(116_444_736_000_000_000n + 17_000_000_005n)).toBe(1700);
    expect(unixSecondsToHandshakeTicks(1700)).toBe(116_444_753_000_000_000n);
  });

  it('derives a stable, name-based GUID per interface name (case-insensitive, like Windows names)', () => {
    expect(formatGuid(adapterGuid('trellis0'))).toBe(formatGuid(adapterGuid('Trellis0')));
    expect(formatGuid(adapterGuid('trellis0'))).not.toBe(formatGuid(adapterGuid('trellis1')));
    expect(formatGuid(adapterGuid('trellis0'))).toMatch(
      /^\{[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\}$/,
    );
  });

  it('parses and prints addresses as inet_ntop does', () => {
    expect(formatIp(parseIp('2001:0db8:0000:0000:0000:0000:0000:0001'))).toBe('2001:db8::1');
    expect(formatIp(parseIp('::ffff:192.0.2.1'))).toBe('::ffff:192.0.2.1');
    expect(formatIp(parseIp('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIp(parseIp('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7');
    expect(parseCidr('fd7a:115c:a1e0::/48')).toMatchObject({ family: AF_INET6, cidr: 48 });
    expect(parseEndpointAddress('[fe80::1%7]:41641')).toMatchObject({
      family: AF_INET6,
      port: 41641,
      scopeId: 7,
    });
    expect(() => parseEndpointAddress('[10.0.0.1]:1')).toThrow(/bad endpoint/);
    expect(() => parseEndpointAddress('10.0.0.1:0')).toThrow(/bad endpoint/);
  });

  it('prints IPv6 as the WHATWG URL serializer does (an independent RFC 5952 printer)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat({ max: 6 }), (raw, zeros) => {
        const bytes = Buffer.from(raw);
        bytes.fill(0, 4, 4 + zeros * 2); // runs of zero groups, where compression matters
        if (bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff) return;
        const text = formatIp({ family: AF_INET6, bytes });
        expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
        expect(parseIp(text).bytes).toEqual(bytes);
      }),
    );
  });
});

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));
const v4Arb = fc.ipV4();
const v6Arb = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .map((b) => formatIp({ family: AF_INET6, bytes: Buffer.from(b) }));
const cidrArb = fc.oneof(
  fc.tuple(v4Arb, fc.integer({ min: 0, max: 32 })).map(([a, n]) => `${a}/${n}`),
  fc.tuple(v6Arb, fc.integer({ min: 0, max: 128 })).map(([a, n]) => `${a}/${n}`),
);
const endpointArb = fc.oneof(
  fc.tuple(v4Arb, fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`),
  fc.tuple(v6Arb, fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `[${a}]:${p}`),
);
const stateArb: fc.Arbitrary<WgDeviceState> = fc.record({
  privateKey: fc.option(keyArb, { nil: null }),
  listenPort: fc.integer({ min: 0, max: 65535 }),
  peers: fc.array(
    fc.record({
      publicKey: keyArb,
      endpoint: fc.option(endpointArb, { nil: null }),
      allowedIps: fc.array(cidrArb, { maxLength: 4 }),
      persistentKeepalive: fc.integer({ min: 0, max: 65535 }),
      lastHandshakeSec: fc.integer({ min: 0, max: 2 ** 40 }),
      rxBytes: fc.maxSafeNat(),
      txBytes: fc.maxSafeNat(),
    }),
    { maxLength: 5 },
  ),
});
const updateArb: fc.Arbitrary<WgConfigUpdate> = fc.record(
  {
    privateKey: keyArb,
    listenPort: fc.integer({ min: 0, max: 65535 }),
    peers: fc.array(
      fc.oneof(
        fc.record({ publicKey: keyArb, remove: fc.constant(true) }),
        fc.record(
          {
            publicKey: keyArb,
            endpoint: endpointArb,
            persistentKeepalive: fc.integer({ min: 0, max: 65535 }),
            allowedIps: fc.array(cidrArb, { maxLength: 4 }),
          },
          { requiredKeys: ['publicKey'] },
        ),
      ),
      { maxLength: 5 },
    ),
  },
  { requiredKeys: ['peers'] },
);

/** The inverse of updateToNt, from the flags alone: what the driver will read out of the buffer. */
function readUpdate(nt: NtInterface): WgConfigUpdate {
  const u: WgConfigUpdate = { peers: [] };
  if (nt.flags & InterfaceFlag.HAS_PRIVATE_KEY) u.privateKey = nt.privateKey.toString('base64');
  if (nt.flags & InterfaceFlag.HAS_LISTEN_PORT) u.listenPort = nt.listenPort;
  for (const p of nt.peers) {
    const peer: WgPeerUpdate = { publicKey: p.publicKey.toString('base64') };
    if (p.flags & PeerFlag.REMOVE) peer.remove = true;
    const state = decodeState(packConfig({ ...nt, flags: 0, peers: [p] })).peers[0]!;
    if (p.flags & PeerFlag.HAS_ENDPOINT) peer.endpoint = state.endpoint!;
    if (p.flags & PeerFlag.HAS_PERSISTENT_KEEPALIVE) peer.persistentKeepalive = p.persistentKeepalive;
    if (p.flags & PeerFlag.REPLACE_ALLOWED_IPS) peer.allowedIps = state.allowedIps;
    u.peers.push(peer);
  }
  return u;
}

describe('wireguard-nt round trips (property)', () => {
  it('decodeState(encodeState(s)) is s', () => {
    fc.assert(fc.property(stateArb, (s) => expect(decodeState(encodeState(s))).toEqual(s)));
  });

  it('an encoded update reads back as the same update (fwmark aside)', () => {
    fc.assert(
      fc.property(updateArb, (u) => {
        const { fwmark: _ignored, ...rest } = u;
        expect(readUpdate(unpackConfig(encodeUpdate(u)))).toEqual(rest);
      }),
    );
  });

  it('pack and unpack are inverse on the bytes', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const buf = encodeState(s);
        expect(packConfig(unpackConfig(buf)).equals(buf)).toBe(true);
      }),
    );
  });

  it('IPv4 endpoints and prefixes keep their bytes', () => {
    expect([...parseIp('100.64.0.2').bytes]).toEqual([100, 64, 0, 2]);
    expect(parseEndpointAddress('100.64.0.2:51820')).toMatchObject({ family: AF_INET, port: 51820 });
  });
});
