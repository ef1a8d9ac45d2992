import { win32 } from 'node:path';

/**
 * Just enough of Windows PowerShell 5.1 to tell what a line of the service scripts hands on: its
 * quoting rules for arguments, the assignments the scripts use (Join-Path, -f), how it builds a
 * native program's command line, and how that program's C runtime splits it again. A construct it
 * does not know throws, so a test never passes on something it did not understand.
 */
export type Vars = Map<string, string>;

const variable = (vars: Vars, name: string) => {
  const v = vars.get(name);
  if (v === undefined) throw new Error(`ps-model: $${name} is not set`);
  return v;
};

/** The values of a command's arguments (after the command name), up to a pipe. */
export function evalArgs(text: string, vars: Vars): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      break;
    } else if (c === "'") {
      let v = '';
      for (i++; ; i++) {
        if (i >= text.length) throw new Error('ps-model: unterminated single-quoted string');
        if (text[i] === "'" && text[i + 1] === "'") v += text[i++];
        else if (text[i] === "'") break;
        else v += text[i];
      }
      i++;
      out.push(v);
    } else if (c === '"') {
      let v = '';
      for (i++; text[i] !== '"'; i++) {
        if (i >= text.length) throw new Error('ps-model: unterminated double-quoted string');
        if (text[i] === '`') v += text[++i];
        else if (text[i] === '$') {
          const m = /^\$(?:\{(\w+)\}|(\w+))/.exec(text.slice(i));
          if (!m) throw new Error(`ps-model: unsupported expansion at ${text.slice(i, i + 12)}`);
          v += variable(vars, (m[1] ?? m[2])!);
          i += m[0].length - 1;
        } else v += text[i];
      }
      i++;
      out.push(v);
    } else if (c === '$') {
      const m = /^\$(\w+)/.exec(text.slice(i));
      if (!m) throw new Error(`ps-model: unsupported expression at ${text.slice(i, i + 12)}`);
      out.push(variable(vars, m[1]!));
      i += m[0].length;
    } else {
      const m = /^[^\s|'"$]+/.exec(text.slice(i))!;
      out.push(m[0]);
      i += m[0].length;
    }
  }
  return out;
}

/** `$Name = Join-Path A B` or `$Name = 'FORMAT' -f $Value`: sets the variable. */
export function evalAssignment(line: string, vars: Vars): void {
  const m = /^\$(\w+) = (.*)$/.exec(line.trim());
  if (!m) throw new Error(`ps-model: not an assignment: ${line}`);
  const [, name, expr] = m as unknown as [string, string, string];
  let value: string;
  if (expr.startsWith('Join-Path ')) {
    const [a, b, ...more] = evalArgs(expr.slice('Join-Path '.length), vars);
    if (a === undefined || b === undefined || more.length) throw new Error(`ps-model: ${expr}`);
    value = win32.join(a, b);
  } else {
    const f = /^('(?:[^']|'')*') -f (\$\w+)$/.exec(expr);
    if (!f) throw new Error(`ps-model: unsupported expression: ${expr}`);
    const [format, arg] = evalArgs(`${f[1]} ${f[2]}`, vars) as [string, string];
    if (/\{[1-9]/.test(format)) throw new Error(`ps-model: one argument only: ${format}`);
    value = format.replaceAll('{0}', arg);
  }
  vars.set(name, value);
}

/** A cmdlet's named parameters (`-Name value`, `-Switch`) as it receives them. */
export function cmdletParams(line: string, vars: Vars): Map<string, string | true> {
  const [, args = ''] = /^[\w-]+ (.*)$/.exec(line.trim()) ?? [];
  const tokens = evalArgs(args, vars);
  const params = new Map<string, string | true>();
  for (let i = 0; i < tokens.length; i++) {
    const name = /^-(\w+)$/.exec(tokens[i]!)?.[1];
    if (!name) throw new Error(`ps-model: a positional argument: ${tokens[i]}`);
    const next = tokens[i + 1];
    if (next === undefined || /^-\w+$/.test(next)) params.set(name, true);
    else params.set(name, tokens[++i]!);
  }
  return params;
}

/**
 * Windows PowerShell 5.1's command line for a native program: an argument with whitespace outside
 * double quotes is put in quotes, and quotes inside it are not escaped (NativeCommandParameterBinder).
 */
export function nativeCommandLine(program: string, args: readonly string[]): string {
  const needsQuotes = (a: string) => {
    let quotes = 0;
    for (const ch of a) {
      if (ch === '"') quotes++;
      else if (/\s/.test(ch) && quotes % 2 === 0) return true;
    }
    return a === '';
  };
  return [program, ...args.map((a) => (needsQuotes(a) ? `"${a}"` : a))].join(' ');
}

/** The argv a C runtime program (sc.exe, icacls.exe) gets from a command line (CommandLineToArgvW). */
export function commandLineToArgv(line: string): string[] {
  const argv: string[] = [];
  let cur: string | null = null;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (/\s/.test(c) && !quoted) {
      if (cur !== null) argv.push(cur);
      cur = null;
      continue;
    }
    cur ??= '';
    if (c === '\\') {
      let n = 0;
      while (line[i + n] === '\\') n++;
      const literalQuote = line[i + n] === '"' && n % 2 === 1;
      // Before a quote backslashes pair up; an odd one out makes the quote literal.
      cur += '\\'.repeat(line[i + n] === '"' ? n >> 1 : n) + (literalQuote ? '"' : '');
      i += literalQuote ? n : n - 1;
    } else if (c === '"') {
      if (quoted && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else cur += c;
  }
  if (cur !== null) argv.push(cur);
  return argv;
}

/** `& program args…`: the argv the program receives. */
export function nativeArgv(line: string, vars: Vars): string[] {
  const m = /^& ([\w.]+) (.*)$/.exec(line.trim());
  if (!m) throw new Error(`ps-model: not a native call: ${line}`);
  return commandLineToArgv(nativeCommandLine(m[1]!, evalArgs(m[2]!, vars)));
}
