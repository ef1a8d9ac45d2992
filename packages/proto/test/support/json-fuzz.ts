// Deterministic mutations of a valid JSON message, for the parsers of every JSON line and frame:
// a leaf or subtree swapped for a hostile value, a key dropped or added, an array blown up, or the
// text itself cut, doubled or sprinkled with characters.
import { prng, textMutations } from '../../../portmap/test/support/fuzz';

/** How many cases each fuzz target runs: 100k in CI; `pnpm bench fuzz` sets more and other seeds. */
export const FUZZ_CASES = Number(process.env.TRELLIS_FUZZ_CASES ?? 100_000);
export const FUZZ_SEED = Number(process.env.TRELLIS_FUZZ_SEED ?? 1);

const deep = (n: number): unknown => (n === 0 ? 'x' : [deep(n - 1)]);

/** Values a hostile peer would try in any field. */
const HOSTILE: readonly unknown[] = [
  '',
  'a\nb',
  '\u0000',
  '\r\n\r\n',
  'x'.repeat(10_000),
  '0.0.0.0/0',
  '100.64.0.2/32\nallowed_ip=0.0.0.0/0',
  '100.64.0.2/32,0.0.0.0/0',
  '-h',
  '../../etc/passwd',
  '__proto__',
  '1.2.3.4:0',
  '[::1]:70000',
  'AAAA',
  -1,
  0,
  2 ** 53,
  1e308,
  -0,
  1.5,
  true,
  null,
  [],
  {},
  { __proto__: { polluted: true } },
  deep(200),
];
const KEYS = ['__proto__', 'constructor', 'prototype', 'type', 'serial', 'peers', 'self', 'extra'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a node of `value` (the root is the empty path). */
function paths(value: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  out.push(at);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) paths(v, [...at, i], out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out);
  }
  return out;
}

function parentOf(root: Json, path: Array<string | number>): { parent: Json; key: string | number } | null {
  if (path.length === 0) return null;
  let node: Json = root;
  for (const k of path.slice(0, -1)) node = (node as Record<string | number, Json>)[k] as Json;
  return { parent: node, key: path[path.length - 1]! };
}

/** `count` mutated texts of `valid` (the structure mutations see it as JSON). */
export function* jsonMutations(valid: unknown, count: number, seed = FUZZ_SEED): Generator<string> {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const text = JSON.stringify(valid);
  const texts = textMutations(text, count, seed + 1);
  // Every case starts from a fresh copy of the same structure, so its paths are found once.
  const all = paths(JSON.parse(text) as Json);
  for (let i = 0; i < count; i++) {
    const root = JSON.parse(text) as Json;
    const target = parentOf(root, all[int(all.length)]!);
    const hostile = HOSTILE[int(HOSTILE.length)] as Json;
    switch (i % 5) {
      case 0: // replace a node
        if (target) (target.parent as Record<string | number, Json>)[target.key] = hostile;
        yield JSON.stringify(target ? root : hostile);
        break;
      case 1: // drop a key or an element
        if (target && Array.isArray(target.parent)) target.parent.splice(Number(target.key), 1);
        else if (target) delete (target.parent as Record<string, Json>)[target.key];
        yield JSON.stringify(root);
        break;
      case 2: {
        // add a key to an object (its own text, so `__proto__` really is a key of the frame)
        const key = KEYS[int(KEYS.length)]!;
        const body = JSON.stringify(root);
        yield body.startsWith('{') && body.length > 2
          ? `{${JSON.stringify(key)}:${JSON.stringify(hostile)},${body.slice(1)}`
          : body;
        break;
      }
      case 3: // blow an array up
        if (target && Array.isArray(target.parent)) {
          const item = target.parent[Number(target.key)] as Json;
          target.parent.push(...Array.from({ length: 1 + int(40) }, () => item));
        }
        yield JSON.stringify(root);
        break;
      default:
        yield texts.next().value as string;
    }
  }
}

/** Whether any string in `value` (keys too) holds a control character. */
export function hasControlCharacter(value: unknown): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  const control = /[\u0000-\u001f\u007f]/;
  if (typeof value === 'string') return control.test(value);
  if (Array.isArray(value)) return value.some(hasControlCharacter);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => control.test(k) || hasControlCharacter(v));
  }
  return false;
}
