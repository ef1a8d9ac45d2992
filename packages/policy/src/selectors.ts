import { IPV4_RE, ipv4InCidr, OVERLAY_PREFIX, routePrefixProblem } from '@trellis/proto';
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
  | { kind: 'device'; name: string }
  /** A routed destination (a rule's dst only): addresses outside the overlay, behind gateways. */
  | { kind: 'route'; prefix: string };

/**
 * `autogroup:internet`: what exit nodes forward, and only through them (a gateway serving
 * EXIT_ROUTE); unlike 0.0.0.0/0 it covers no subnet behind a gateway. Kept as itself in dstRoutes.
 */
export const INTERNET = 'autogroup:internet';

/** Emails compare case-insensitively (`user:Alice@acme.com` is alice's). */
export const normalEmail = (email: string) => email.toLowerCase();

export const userAtom = (email: string): Atom => `user:${normalEmail(email)}`;
export const nameAtom = (name: string): Atom => `name:${name}`;
export const blockAtom = (name: string): Atom => `cidr:${name}`;

/** The atom of a selector that is not a group. */
export function atomOf(sel: Exclude<Selector, { kind: 'group' | 'route' }>): Atom {
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
  if (text === INTERNET || /^[0-9.]+\/\d+$/.test(text)) {
    if (inGroup) return `"${clip(text)}" is a routed destination: name it in a rule's dst, not in a group`;
    if (text === INTERNET) return { kind: 'route', prefix: INTERNET };
    const problem = routePrefixProblem(text);
    return problem === null ? { kind: 'route', prefix: text } : `"${clip(text)}" ${problem}`;
  }
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

/**
 * A test target `NAME:PORT`, `NAME:tcp/PORT`, `NAME:udp/PORT` or `NAME:icmp`; NAME may be an IPv4
 * address outside the overlay (`address`), a host behind a gateway.
 */
export type TestTarget = { proto: 'tcp' | 'udp' | 'icmp'; port?: number } & (
  | { device: string; address?: undefined }
  | { address: string; device?: undefined }
);

export function parseTestTarget(text: string): TestTarget | string {
  const bad = `"${clip(text)}" is not a test target: expected NAME:PORT, NAME:tcp/PORT, NAME:udp/PORT or NAME:icmp`;
  const m = /^([^:]+):(?:(icmp)|(?:(tcp|udp)\/)?(\d{1,5}))$/.exec(text);
  if (!m) return bad;
  const name = m[1]!;
  const isAddress = IPV4_RE.test(name);
  if (!isAddress && (!DEVICE_NAME_RE.test(name) || name.length > 63)) return bad;
  if (isAddress && ipv4InCidr(name, OVERLAY_PREFIX)) {
    return `"${clip(text)}": an overlay address is a device; name the device instead`;
  }
  const who = isAddress ? { address: name } : { device: name };
  if (m[2]) return { ...who, proto: 'icmp' };
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return `"${clip(text)}": ports are 1-65535`;
  return { ...who, proto: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp', port };
}
