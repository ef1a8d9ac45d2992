import {
  encodeExternalAddressRequest,
  encodeMapRequest,
  parseExternalAddressResponse,
  parseMapResponse,
} from '../src/natpmp/natpmp-codec';
import { mutations } from './support/fuzz';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

describe('NAT-PMP codec', () => {
  it('encodes requests as RFC 6886 lays them out', () => {
    expect(Buffer.from(encodeExternalAddressRequest()).toString('hex')).toBe('0000');
    expect(Buffer.from(encodeMapRequest(51820, 51821, 7200)).toString('hex')).toBe(
      '00010000ca6cca6d00001c20',
    );
  });

  const externalOk = hex('00 80 0000 0000002a 0b000001');
  const mapOk = hex('00 81 0000 0000002a ca6c ca6d 00001c20');

  it('parses a valid external-address and map response', () => {
    expect(parseExternalAddressResponse(externalOk)).toEqual({
      ok: true,
      value: { kind: 'external-address', epoch: 42, externalIp: '11.0.0.1' },
    });
    expect(parseMapResponse(mapOk)).toEqual({
      ok: true,
      value: { kind: 'map', epoch: 42, internalPort: 51820, externalPort: 51821, lifetime: 7200 },
    });
  });

  it('reports refusals by result code, including the short form', () => {
    expect(parseMapResponse(hex('00 81 0002 0000002a'))).toEqual({
      ok: true,
      value: { kind: 'failure', resultCode: 2 },
    });
    expect(parseMapResponse(hex('00 81 0003 0000002a ca6c 0000 00000000'))).toMatchObject({
      value: { kind: 'failure', resultCode: 3 },
    });
  });

  it('rejects wrong version, opcode and length', () => {
    expect(parseMapResponse(hex('01 81 0000 0000002a ca6c ca6d 00001c20')).ok).toBe(false);
    expect(parseMapResponse(hex('00 80 0000 0000002a ca6c ca6d 00001c20')).ok).toBe(false);
    expect(parseMapResponse(hex('00 81 0000 0000002a ca6c ca6d 00001c20 00')).ok).toBe(false);
    expect(parseExternalAddressResponse(hex('00 80 0000 0000002a 0b0000')).ok).toBe(false);
    // A PCP server's "unsupported version" answer is not a NAT-PMP answer.
    expect(parseMapResponse(hex('02 81 0001 00000000 00000000 00000000')).ok).toBe(false);
  });

  it('never throws on mutated input, and accepts only well-formed results', () => {
    for (const [valid, parse, length] of [
      [externalOk, parseExternalAddressResponse, 12],
      [mapOk, parseMapResponse, 16],
    ] as const) {
      let accepted = 0;
      for (const input of mutations(valid, 3000)) {
        const result = parse(input);
        if (result.ok) {
          accepted++;
          expect(input[0]).toBe(0);
          expect([8, length]).toContain(input.length);
          if (result.value.kind !== 'failure') expect(input.length).toBe(length);
        }
      }
      expect(accepted).toBeGreaterThan(0); // bit flips in the payload are still valid messages
    }
  });
});
