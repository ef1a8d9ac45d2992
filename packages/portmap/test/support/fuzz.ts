// Deterministic mutations of a valid message: truncations, extensions, bit flips and byte overwrites.

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` pseudo-random bytes, four from each draw (a draw per byte made the generator the cost). */
function randomBytes(random: () => number, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) words[i] = random() * 4294967296;
  return new Uint8Array(words.buffer, 0, length);
}

export function* mutations(valid: Uint8Array, count: number, seed = 1): Generator<Uint8Array> {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  for (let len = 0; len < valid.length; len++) yield valid.slice(0, len);
  for (let i = 0; i < count; i++) {
    const copy = Uint8Array.from(valid);
    switch (i % 4) {
      case 0:
        copy[int(copy.length)]! ^= 1 << int(8);
        yield copy;
        break;
      case 1:
        copy[int(copy.length)] = int(256);
        copy[int(copy.length)] = int(256);
        yield copy;
        break;
      case 2: {
        const extra = randomBytes(random, 1 + int(2000));
        const out = new Uint8Array(copy.length + extra.length);
        out.set(copy);
        out.set(extra, copy.length);
        yield out;
        break;
      }
      default:
        yield randomBytes(random, int(valid.length * 2));
    }
  }
}

/** Text mutations: cut, duplicate or replace a random slice, or insert random characters. */
export function* textMutations(valid: string, count: number, seed = 1): Generator<string> {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const alphabet = '<>/="\'&;:!?[]-# \r\nabcxyzAB0123';
  for (let i = 0; i < count; i++) {
    const a = int(valid.length);
    const b = Math.min(valid.length, a + int(40));
    switch (i % 4) {
      case 0:
        yield valid.slice(0, a) + valid.slice(b);
        break;
      case 1:
        yield valid.slice(0, b) + valid.slice(a, b) + valid.slice(b);
        break;
      case 2:
        yield valid.slice(0, a) +
          Array.from({ length: 1 + int(5) }, () => alphabet[int(alphabet.length)]).join('') +
          valid.slice(a);
        break;
      default:
        yield valid.slice(0, a);
    }
  }
}
