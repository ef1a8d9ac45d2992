import { isIP } from 'node:net';

/** One resolver block of `scutil --dns`. */
export interface ScutilResolver {
  /** Absent for the default resolvers; a supplemental one (an /etc/resolver file, a VPN's) has it. */
  domain: string | null;
  nameservers: string[];
  interface: string | null;
}

/**
 * `scutil --dns`: blocks that start with `resolver #N`, then `key : value` lines (`nameserver[0] :
 * 192.168.1.1`, `domain : local`, `if_index : 6 (en0)`). Both sections, unscoped and scoped.
 */
export function parseScutilDns(text: string): ScutilResolver[] {
  const out: ScutilResolver[] = [];
  let current: ScutilResolver | null = null;
  for (const line of text.split('\n')) {
    if (/^resolver #\d+/.test(line.trim())) {
      current = { domain: null, nameservers: [], interface: null };
      out.push(current);
      continue;
    }
    const m = /^\s+([a-z_ ]+?)(?:\[\d+\])?\s*:\s*(.*?)\s*$/.exec(line);
    if (!current || !m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'domain') current.domain = value;
    else if (key === 'nameserver' && isIP(value.replace(/%.*$/, ''))) current.nameservers.push(value);
    else if (key === 'if_index') current.interface = /\((\S+)\)/.exec(value)?.[1] ?? null;
  }
  return out;
}

/** The nameservers names outside any supplemental domain go to (the default resolvers'). */
export function defaultNameservers(resolvers: readonly ScutilResolver[]): string[] {
  const out: string[] = [];
  for (const r of resolvers) {
    if (r.domain !== null) continue;
    for (const ns of r.nameservers) if (!out.includes(ns)) out.push(ns);
  }
  return out;
}
