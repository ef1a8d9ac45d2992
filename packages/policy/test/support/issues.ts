import { type PolicyIssue, parsePolicy } from '@trellis/policy';

/** The errors of a text that must not parse. */
export function errorsOf(text: string): PolicyIssue[] {
  const r = parsePolicy(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

/** The one error of a text, checked against its message, position and path. */
export function expectError(
  text: string,
  message: RegExp,
  line: number,
  column: number,
  path?: Array<string | number>,
) {
  const errors = errorsOf(text);
  expect(errors).toHaveLength(1);
  const [e] = errors;
  expect(e!.message).toMatch(message);
  expect([e!.line, e!.column]).toEqual([line, column]);
  if (path) expect(e!.path).toEqual(path);
}

export const lines = (...l: string[]) => l.join('\n');
