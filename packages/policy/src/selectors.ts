import { clip } from './ports';

/** `tag:NAME`, `group:NAME`: a-z, 0-9 and inner hyphens (as the wire's TagName). */
const NAME = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
export const DEVICE_NAME_RE = new RegExp(`^${NAME}$`);
export const GROUP_RE = new RegExp(`^group:${NAME}$`);
export const TAG_RE = new RegExp(`^tag:${NAME}$`);
export const BLOCK_NAME_RE = DEVICE_NAME_RE;
const EMAIL_RE = /^[^\s@:,"*]+@[^\s@:,"*]+$/;

/**
 * What a selector matches on, once groups are expanded: every device, a tag, a user, a block (its
 * sub-blocks included) or a device name. Kept as strings (`*`, `tag:x`, `user:e`, `cidr:n`,
 * `name:n`) so sets and signatures are cheap.
 */
export type Atom = string;
export const ANY: Atom = '*';

export type Selector =
  | { kind: 'any' }
  | { kind: 'group'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'cidr'; name: string }
  | { kind: 'user'; email: string }
  | { kind: 'device'; name: string };

/** Emails compare case-insensitively (`user:Alice@acme.com` is alice's). */
export const normalEmail = (email: string) => email.toLowerCase();

export const userAtom = (email: string): Atom => `user:${normalEmail(email)}`;
export const nameAtom = (name: string): Atom => `name:${name}`;
export const blockAtom = (name: string): Atom => `cidr:${name}`;

/** The atom of a selector that is not a group. */
export function atomOf(sel: Exclude<Selector, { kind: 'group' }>): Atom {
  switch (sel.kind) {
    case 'any':
      return ANY;
    case 'tag':
      return sel.name;
    case 'cidr':
      return blockAtom(sel.name);
    case 'user':
      return userAtom(sel.email);
    case 'device':
      return nameAtom(sel.name);
  }
}

/** Parses a selector of a rule (`*` allowed) or a group member (not). Returns why it is not one. */
export function parseSelector(text: string, inGroup: boolean): Selector | string {
  if (text === '*') return inGroup ? '"*" cannot be a group member; use it in a rule' : { kind: 'any' };
  if (text.startsWith('group:')) {
    return GROUP_RE.test(text) ? { kind: 'group', name: text } : `"${clip(text)}" is not a valid group name`;
  }
  if (text.startsWith('tag:')) {
    return TAG_RE.test(text) && text.length <= 64
      ? { kind: 'tag', name: text }
      : `"${clip(text)}" is not a valid tag: tag:NAME with NAME a-z, 0-9 and inner hyphens`;
  }
  if (text.startsWith('cidr:')) {
    const name = text.slice(5);
    return BLOCK_NAME_RE.test(name) ? { kind: 'cidr', name } : `"${clip(text)}" is not a valid block name`;
  }
  if (text.startsWith('user:')) {
    const email = text.slice(5);
    return EMAIL_RE.test(email) && email.length <= 254
      ? { kind: 'user', email: normalEmail(email) }
      : `"${clip(text)}" is not user:EMAIL`;
  }
  if (DEVICE_NAME_RE.test(text) && text.length <= 63) return { kind: 'device', name: text };
  return `unknown selector "${clip(text)}": expected ${inGroup ? '' : '*, '}group:NAME, tag:NAME, cidr:NAME, user:EMAIL or a device name`;
}

/** A test target `NAME:PORT`, `NAME:tcp/PORT`, `NAME:udp/PORT` or `NAME:icmp`. */
export type TestTarget = { device: string; proto: 'tcp' | 'udp' | 'icmp'; port?: number };

export function parseTestTarget(text: string): TestTarget | string {
  const bad = `"${clip(text)}" is not a test target: expected NAME:PORT, NAME:tcp/PORT, NAME:udp/PORT or NAME:icmp`;
  const m = /^([^:]+):(?:(icmp)|(?:(tcp|udp)\/)?(\d{1,5}))$/.exec(text);
  if (!m || !DEVICE_NAME_RE.test(m[1]!) || m[1]!.length > 63) return bad;
  if (m[2]) return { device: m[1]!, proto: 'icmp' };
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return `"${clip(text)}": ports are 1-65535`;
  return { device: m[1]!, proto: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp', port };
}
