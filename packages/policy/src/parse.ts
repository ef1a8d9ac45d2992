import { getLocation } from 'jsonc-parser';
import type { z } from 'zod';
// Core's safeParse: its plain error costs a third of classic ZodError's on a refused file.
import { safeParse } from 'zod/v4/core';
import {
  type IssuePath,
  LineMap,
  Locator,
  type PolicyIssue,
  parseSyntax,
  pathOf,
  treeToValue,
} from './locations';
import { resolve } from './resolve';
import { LIMITS, PolicyFile } from './schema';
import type { Policy } from './types';

export type ParseResult =
  | { ok: true; policy: Policy; warnings: PolicyIssue[] }
  | { ok: false; errors: PolicyIssue[] };

/**
 * Parses a policy file (JSON with comments). Every problem is located at the node it is about.
 * Never throws: anything a user or an attacker can type comes back as errors.
 */
export function parsePolicy(text: string): ParseResult {
  if (typeof text !== 'string')
    return fail([{ message: 'the policy must be text', line: 1, column: 1, path: [] }]);
  if (text.length > LIMITS.text) {
    return fail([
      { message: `the policy is longer than ${LIMITS.text} characters`, line: 1, column: 1, path: [] },
    ]);
  }
  const syntax = parseSyntax(text);
  if (syntax.errors.length > 0 || !syntax.tree) {
    const lines = new LineMap(text);
    return fail(
      syntax.errors.map((e) => ({
        message: e.message,
        ...lines.at(e.offset),
        path: syntaxPath(text, e.offset),
      })),
    );
  }
  const at = new Locator(text, syntax.tree);
  const { value, problems } = treeToValue(syntax.tree);
  const errors = problems.map((p) => at.atNode(p.message, p.node, pathOf(p.node)));
  const file = safeParse(PolicyFile, value);
  if (!file.success) {
    errors.push(...file.error.issues.flatMap((i) => zodIssues(i, at, value)));
    return fail(errors);
  }
  if (errors.length > 0) return fail(errors);
  const r = resolve(text, file.data, at);
  if (!r.policy) return fail(r.errors);
  return { ok: true, policy: r.policy, warnings: sortIssues(r.warnings) };
}

/** Where in the document a syntax error sits, as far as the text before it tells. */
function syntaxPath(text: string, offset: number): IssuePath {
  try {
    return getLocation(text, offset).path.filter((p) => p !== '');
  } catch {
    return [];
  }
}

function fail(errors: PolicyIssue[]): ParseResult {
  return { ok: false, errors: sortIssues(errors) };
}

/** In text order, each problem once. */
export function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((i) => {
      const key = `${i.line}:${i.column}:${i.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

const SECTIONS = Object.keys(PolicyFile.shape).join(', ');

/** A zod issue in the policy's words, at its node. Unknown keys point at each key. */
function zodIssues(issue: z.core.$ZodIssue, at: Locator, value: unknown): PolicyIssue[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => {
        const where = path.length === 0 ? ` (sections: ${SECTIONS})` : '';
        return at.issue(`unknown key "${k.slice(0, 40)}"${where}`, [...path, k], true);
      });
    case 'invalid_key': {
      const inner = issue.issues[0]?.message ?? issue.message;
      return [at.issue(`invalid name "${String(path[path.length - 1]).slice(0, 40)}": ${inner}`, path, true)];
    }
    case 'invalid_type': {
      const last = path[path.length - 1];
      if (valueAt(value, path) === undefined && last !== undefined) {
        return [at.issue(typeof last === 'number' ? `missing entry ${last + 1}` : `missing "${last}"`, path)];
      }
      return [at.issue(`expected ${issue.expected}, got ${describe(valueAt(value, path))}`, path)];
    }
    case 'too_big': {
      const what = issue.origin === 'string' ? 'characters' : 'entries';
      return [at.issue(`too long (at most ${issue.maximum} ${what})`, path)];
    }
    default:
      return [at.issue(issue.message, path)];
  }
}

function valueAt(value: unknown, path: IssuePath): unknown {
  let v = value;
  for (const step of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, step)) return undefined;
    v = (v as Record<string | number, unknown>)[step];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `${typeof v === 'number' ? 'the number ' : ''}${String(v).slice(0, 20)}`;
}
