import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { compressedPiece, DeflateStream, FINAL_BLOCK, storedPiece } from '../../src/domain/deflate-pieces';

describe('raw DEFLATE from pieces', () => {
  it('any sequence of compressed and stored pieces inflates to their texts in order', () => {
    const part = fc.record({
      text: fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 80 })),
      how: fc.constantFrom('compressed' as const, 'stored' as const, 'text' as const),
      repeat: fc.integer({ min: 1, max: 400 }),
    });
    fc.assert(
      fc.property(fc.array(part, { maxLength: 12 }), (parts) => {
        const out = new DeflateStream();
        let expected = '';
        for (const p of parts) {
          const text = p.text.repeat(p.how === 'compressed' ? p.repeat : 1);
          expected += text;
          if (p.how === 'compressed') out.piece(compressedPiece(text));
          else if (p.how === 'stored') out.piece(storedPiece(text));
          else out.text(text);
        }
        expect(inflateRawSync(out.finish()).toString('utf8')).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('stores text longer than one stored block can hold in several', () => {
    const text = 'x'.repeat(0xffff * 2 + 10);
    const piece = storedPiece(text);
    expect(piece.length).toBe(text.length + 3 * 5);
    expect(inflateRawSync(Buffer.concat([piece, FINAL_BLOCK])).toString()).toBe(text);
  });

  it('a compressed piece reused in many streams is spliced as it is', () => {
    const shared = compressedPiece('{"peer":1},'.repeat(500));
    const a = new DeflateStream().text('[').piece(shared).text('{"peer":2}]').finish();
    const b = new DeflateStream().text('[{"peer":0},').piece(shared).text('{"peer":3}]').finish();
    expect(JSON.parse(inflateRawSync(a).toString())).toHaveLength(501);
    expect(JSON.parse(inflateRawSync(b).toString())).toHaveLength(502);
    expect(a.length).toBeLessThan(200);
  });
});
