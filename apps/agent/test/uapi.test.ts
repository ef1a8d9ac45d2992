import { generateKeyPair, keyFromHex, keyToHex } from '@trellis/crypto';
import { parseUapiGet, parseUapiSetResult, serializeUapiSet, UapiError } from '../src/wireguard/uapi';
import { UnsafeConfigValueError } from '../src/wireguard/update-check';
import { WgToolClient } from '../src/wireguard/wg-tool';

// The example answer from https://www.wireguard.com/xplatform/ (with the device fields first).
const GET_ANSWER = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
fwmark=0
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
allowed_ip=192.168.4.4/32
endpoint=[abcd:23::33%2]:51820
last_handshake_time_sec=0
last_handshake_time_nsec=0
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
tx_bytes=38333
rx_bytes=2224
allowed_ip=192.168.4.6/32
persistent_keepalive_interval=111
endpoint=182.122.22.19:3233
last_handshake_time_sec=1700000000
last_handshake_time_nsec=12
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
endpoint=5.152.198.39:51820
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
tx_bytes=1212111
rx_bytes=1929999999
errno=0

`;

describe('UAPI get parser', () => {
  it('parses device fields and every peer, keys as base64', () => {
    const s = parseUapiGet(GET_ANSWER);
    expect(s.privateKey).toBe(keyFromHex('e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a'));
    expect(s.listenPort).toBe(12912);
    expect(s.peers).toHaveLength(3);
    expect(s.peers[0]).toEqual({
      publicKey: keyFromHex('b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33'),
      endpoint: '[abcd:23::33%2]:51820',
      allowedIps: ['192.168.4.4/32'],
      persistentKeepalive: 0,
      lastHandshakeSec: 0,
      rxBytes: 0,
      txBytes: 0,
    });
    expect(s.peers[1]).toMatchObject({
      endpoint: '182.122.22.19:3233',
      persistentKeepalive: 111,
      lastHandshakeSec: 1700000000,
      rxBytes: 2224,
      txBytes: 38333,
    });
    expect(s.peers[2]!.allowedIps).toEqual(['192.168.4.10/32', '192.168.4.11/32']);
    expect(s.peers[2]!.rxBytes).toBe(1929999999);
  });

  it('treats an all-zero private key as no key and an empty device as no peers', () => {
    const s = parseUapiGet(`private_key=${'0'.repeat(64)}\nlisten_port=0\nerrno=0\n\n`);
    expect(s).toEqual({ privateKey: null, listenPort: 0, peers: [] });
  });

  it('rejects a failed answer, a missing errno and garbage', () => {
    expect(() => parseUapiGet('errno=2\n\n')).toThrow(/errno=2/);
    expect(() => parseUapiGet('listen_port=1\n\n')).toThrow(UapiError);
    expect(() => parseUapiGet('nonsense\nerrno=0\n\n')).toThrow(/malformed/);
    expect(() => parseUapiGet('listen_port=abc\nerrno=0\n\n')).toThrow(/not a number/);
  });
});

describe('UAPI set serializer', () => {
  const dev = generateKeyPair();
  const a = generateKeyPair().publicKey;
  const b = generateKeyPair().publicKey;

  it('writes device fields, removals and peer changes in protocol order, ending with a blank line', () => {
    const text = serializeUapiSet({
      privateKey: dev.privateKey,
      listenPort: 51820,
      peers: [
        { publicKey: a, remove: true },
        { publicKey: b, endpoint: '10.0.0.2:51820', persistentKeepalive: 25, allowedIps: ['100.64.0.2/32'] },
      ],
    });
    expect(text).toBe(
      [
        'set=1',
        `private_key=${keyToHex(dev.privateKey)}`,
        'listen_port=51820',
        `public_key=${keyToHex(a)}`,
        'remove=true',
        `public_key=${keyToHex(b)}`,
        'endpoint=10.0.0.2:51820',
        'persistent_keepalive_interval=25',
        'replace_allowed_ips=true',
        'allowed_ip=100.64.0.2/32',
        '',
        '',
      ].join('\n'),
    );
  });

  it('touches only the fields given', () => {
    expect(serializeUapiSet({ peers: [{ publicKey: a, persistentKeepalive: 0 }] })).toBe(
      `set=1\npublic_key=${keyToHex(a)}\npersistent_keepalive_interval=0\n\n`,
    );
  });

  it('refuses any value that would add a line, an argument or a list item of its own', async () => {
    const unsafe = [
      { publicKey: b, allowedIps: ['100.64.0.2/32\npublic_key=00'] },
      { publicKey: b, allowedIps: ['100.64.0.2/32,0.0.0.0/0'] },
      { publicKey: b, allowedIps: ['100.64.0.2/33'] },
      { publicKey: b, endpoint: '10.0.0.2:51820\nremove=true' },
      { publicKey: b, endpoint: '-h' },
      { publicKey: b, persistentKeepalive: 1.5 },
      { publicKey: `${b}\n` },
    ];
    const run = jest.fn();
    const wg = new WgToolClient({ run, spawn: jest.fn() }, 'tr-test');
    for (const peer of unsafe) {
      expect(() => serializeUapiSet({ peers: [peer] })).toThrow(UnsafeConfigValueError);
      await expect(wg.set({ peers: [peer] })).rejects.toThrow(/refusing to write/);
    }
    expect(run).not.toHaveBeenCalled();
    expect(() => serializeUapiSet({ listenPort: 70000, peers: [] })).toThrow(/listen port 70000/);
    expect(() => serializeUapiSet({ privateKey: 'x\ny', peers: [] })).toThrow(/private key/);
    // IPv6 prefixes stay writable (WireGuard takes both families).
    expect(serializeUapiSet({ peers: [{ publicKey: b, allowedIps: ['fd7a::1/128'] }] })).toContain(
      'allowed_ip=fd7a::1/128',
    );
  });

  it('parses set results', () => {
    expect(() => parseUapiSetResult('errno=0\n\n')).not.toThrow();
    expect(() => parseUapiSetResult('errno=-22\n\n')).toThrow(/errno=-22/);
    expect(() => parseUapiSetResult('')).toThrow(/malformed/);
  });
});
