import {
  encodeAnnounceRequest,
  encodeMapRequest,
  parseAnnounceResponse,
  parseMapResponse,
} from '../src/pcp/pcp-codec';
import { mutations } from './support/fuzz';

const nonce = Uint8Array.from({ length: 12 }, (_, i) => i + 1);

function mapResponse(options: { result?: number; nonce?: Uint8Array; extra?: number[] } = {}): Uint8Array {
  const buf = Buffer.alloc(60 + (options.extra?.length ?? 0));
  buf[0] = 2;
  buf[1] = 0x81;
  buf[3] = options.result ?? 0;
  buf.writeUInt32BE(3600, 4);
  buf.writeUInt32BE(99, 8);
  buf.set(options.nonce ?? nonce, 24);
  buf[36] = 17;
  buf.writeUInt16BE(51820, 40);
  buf.writeUInt16BE(40000, 42);
  buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 11, 0, 0, 1], 44);
  if (options.extra) buf.set(options.extra, 60);
  return buf;
}

describe('PCP codec', () => {
  it('encodes ANNOUNCE and MAP as RFC 6887 lays them out', () => {
    const announce = Buffer.from(encodeAnnounceRequest('10.0.0.2'));
    expect(announce.toString('hex')).toBe(`0200000000000000${'00'.repeat(10)}ffff0a000002`);
    const map = Buffer.from(
      encodeMapRequest({
        clientIp: '10.0.0.2',
        nonce,
        internalPort: 51820,
        suggestedPort: 51820,
        lifetime: 7200,
      }),
    );
    expect(map.length).toBe(60);
    expect(map.subarray(0, 8).toString('hex')).toBe('0201000000001c20');
    expect(map.subarray(24, 36)).toEqual(Buffer.from(nonce));
    expect(map[36]).toBe(17);
    expect(map.readUInt16BE(40)).toBe(51820);
    expect(map.readUInt16BE(42)).toBe(51820);
    expect(map.subarray(44).toString('hex')).toBe(`${'00'.repeat(10)}ffff00000000`);
  });

  it('parses a MAP response for our nonce and port', () => {
    expect(parseMapResponse(mapResponse(), { nonce, internalPort: 51820 })).toEqual({
      ok: true,
      value: {
        opcode: 1,
        resultCode: 0,
        lifetime: 3600,
        epoch: 99,
        nonce,
        internalPort: 51820,
        externalPort: 40000,
        externalIp: '11.0.0.1',
      },
    });
    expect(parseMapResponse(mapResponse({ result: 2 }), { nonce, internalPort: 51820 })).toMatchObject({
      value: { resultCode: 2 },
    });
  });

  it('rejects other nonces, ports, protocols, bad options and bad framing', () => {
    const expected = { nonce, internalPort: 51820 };
    expect(parseMapResponse(mapResponse({ nonce: new Uint8Array(12) }), expected).ok).toBe(false);
    expect(parseMapResponse(mapResponse(), { nonce, internalPort: 1 }).ok).toBe(false);
    const udpless = mapResponse();
    udpless[36] = 6;
    expect(parseMapResponse(udpless, expected).ok).toBe(false);
    // Optional option (code 128) with 4 bytes of data is fine; a mandatory one or a truncated one is not.
    expect(parseMapResponse(mapResponse({ extra: [128, 0, 0, 4, 1, 2, 3, 4] }), expected).ok).toBe(true);
    expect(parseMapResponse(mapResponse({ extra: [1, 0, 0, 4, 1, 2, 3, 4] }), expected).ok).toBe(false);
    expect(parseMapResponse(mapResponse({ extra: [128, 0, 0, 8, 1, 2, 3, 4] }), expected).ok).toBe(false);
    expect(parseMapResponse(mapResponse({ extra: [0, 0] }), expected).ok).toBe(false);
    expect(parseMapResponse(mapResponse().subarray(0, 24), expected).ok).toBe(false);
    const notMapped = mapResponse();
    notMapped[54] = 0;
    expect(parseMapResponse(notMapped, expected).ok).toBe(false);
    const request = Uint8Array.from(mapResponse());
    request[1] = 0x01; // a request, not a response
    expect(parseMapResponse(request, expected).ok).toBe(false);
    expect(parseMapResponse(new Uint8Array(1104), expected).ok).toBe(false);
  });

  it('parses ANNOUNCE responses and rejects a NAT-PMP-style answer', () => {
    const announce = Buffer.alloc(24);
    announce[0] = 2;
    announce[1] = 0x80;
    expect(parseAnnounceResponse(announce)).toMatchObject({ ok: true, value: { resultCode: 0 } });
    expect(parseAnnounceResponse(Uint8Array.of(0, 0x80, 0, 1, 0, 0, 0, 0)).ok).toBe(false);
  });

  it('never throws on mutated input, and what it accepts matches our request', () => {
    const expected = { nonce, internalPort: 51820 };
    let accepted = 0;
    for (const input of mutations(mapResponse(), 5000)) {
      const result = parseMapResponse(input, expected);
      if (!result.ok) continue;
      accepted++;
      expect(input.length % 4).toBe(0);
      expect(input.length).toBeLessThanOrEqual(1100);
      expect(result.value.nonce).toEqual(nonce);
      expect(result.value.internalPort).toBe(51820);
    }
    expect(accepted).toBeGreaterThan(0);
    for (const input of mutations(Buffer.alloc(24, 0).fill(2, 0, 1).fill(0x80, 1, 2), 2000, 7)) {
      expect(() => parseAnnounceResponse(input)).not.toThrow();
    }
  });
});
