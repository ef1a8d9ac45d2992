import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(__dirname, '..', '..');
export const INFRA = join(ROOT, 'infra');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field by the tests
export type Doc = any;

/** Every document of a YAML file, read as Kubernetes does (YAML 1.1, `<<` merge keys). */
export function readYaml(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1', merge: true });
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS()).filter((d) => d != null);
}

/** The value after `flag` in an argument list (`--flag value`); undefined when absent. */
export function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

/** The port of `HOST:PORT`, `:PORT` or a URL with one. */
export function portOf(hostPort: string): number {
  const m = /:(\d+)$/.exec(hostPort.replace(/\/$/, ''));
  if (!m) throw new Error(`no port in ${hostPort}`);
  return Number(m[1]);
}

/** Whether a command runs here (exit 0). */
export function runs(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
