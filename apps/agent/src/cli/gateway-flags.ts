import { GatewayPrefs } from '@trellis/proto';
import type { Command } from 'commander';

/** The gateway flags as commander hands them over (`up` and `set` share them). */
export interface GatewayFlags {
  advertiseRoutes?: string[];
  advertiseExitNode?: boolean;
  snatRoutes?: string;
  acceptRoutes?: string;
  exitNode?: string;
  exitNodeAllowLan?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds the gateway flags to `up` or `set`. */
export function addGatewayFlags(cmd: Command): Command {
  return cmd
    .option(
      '--advertise-routes <prefixes>',
      'subnet routes to offer, comma-separated (192.168.1.0/24,10.0.0.0/8); repeatable; "" withdraws all',
      collect,
    )
    .option(
      '--advertise-exit-node [bool]',
      'offer to be an exit node (true|false)',
      parseBool('--advertise-exit-node'),
    )
    .option('--snat-routes <bool>', 'masquerade mesh traffic into the LAN (default true)')
    .option('--accept-routes <bool>', "use other devices' subnet routes (default true)")
    .option('--exit-node <name|ip>', 'send internet traffic through this peer; "" turns it off')
    .option('--exit-node-allow-lan <bool>', 'reach the local LAN directly while an exit node is in use');
}

const parseBool = (flag: string) => (value: string) => boolOf(flag, value);

function boolOf(flag: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'true' || v === 'yes' || v === '1') return true;
  if (v === 'false' || v === 'no' || v === '0') return false;
  throw new Error(`${flag} takes true or false, not ${JSON.stringify(value)}`);
}

/**
 * The settings the flags change (undefined: none given). Throws a clear error on a bad value, so
 * nothing is sent and nothing changes.
 */
export function prefsFromFlags(o: GatewayFlags): GatewayPrefs | undefined {
  const p: GatewayPrefs = {};
  if (o.advertiseRoutes !== undefined) {
    p.advertiseRoutes = o.advertiseRoutes
      .flatMap((v) => v.split(','))
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }
  if (o.advertiseExitNode !== undefined) p.advertiseExitNode = o.advertiseExitNode;
  if (o.snatRoutes !== undefined) p.snatRoutes = boolOf('--snat-routes', o.snatRoutes);
  if (o.acceptRoutes !== undefined) p.acceptRoutes = boolOf('--accept-routes', o.acceptRoutes);
  if (o.exitNode !== undefined) p.exitNode = o.exitNode.trim() === '' ? null : o.exitNode.trim();
  if (o.exitNodeAllowLan !== undefined)
    p.exitNodeAllowLan = boolOf('--exit-node-allow-lan', o.exitNodeAllowLan);
  if (Object.keys(p).length === 0) return undefined;
  const parsed = GatewayPrefs.safeParse(p);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = `--${String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    const at = issue.path.length > 1 ? ` ${JSON.stringify(p.advertiseRoutes?.[Number(issue.path[1])])}` : '';
    const hint = issue.message.includes('exit node') ? ' (offer it with --advertise-exit-node)' : '';
    throw new Error(`${field}${at}: ${issue.message}${hint}`);
  }
  return parsed.data;
}
