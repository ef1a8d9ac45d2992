import fc from 'fast-check';
import { formatUserCode, normaliseUserCode, USER_CODE_ALPHABET, UserCode } from '../src';

describe('user codes', () => {
  it('are read back whatever the case and separators the user typed', () => {
    expect(UserCode.parse('bcdf-ghjk')).toBe('BCDFGHJK');
    expect(UserCode.parse(' BCDF GHJK ')).toBe('BCDFGHJK');
    expect(formatUserCode('BCDFGHJK')).toBe('BCDF-GHJK');
  });

  it('refuse anything that is not 8 letters of the alphabet (vowels and digits are not in it)', () => {
    for (const bad of ['BCDF-GHJ', 'BCDF-GHJKL', 'AEIO-U123', ''])
      expect(UserCode.safeParse(bad).success).toBe(false);
  });

  it('round-trip: every formatted code parses back to itself', () => {
    const letter = fc.constantFrom(...USER_CODE_ALPHABET.split(''));
    fc.assert(
      fc.property(fc.array(letter, { minLength: 8, maxLength: 8 }), (letters) => {
        const code = letters.join('');
        expect(UserCode.parse(formatUserCode(code).toLowerCase())).toBe(code);
        expect(normaliseUserCode(formatUserCode(code))).toBe(code);
      }),
    );
  });
});
