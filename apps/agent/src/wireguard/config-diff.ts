import { clampPrivateKey } from './keys';
import type { WgConfigUpdate, WgDeviceState, WgPeerUpdate } from './types';

export const PERSISTENT_KEEPALIVE_SECONDS = 25;

export interface DesiredPeer {
  publicKey: string;
  allowedIps: string[];
  /**
   * The endpoint the config owns (a reflector's), with persistent keepalive. Absent: the path logic
   * owns endpoint and keepalive (on only while a path is in use), so the diff never touches either.
   */
  endpoint?: string;
}

export interface DesiredConfig {
  privateKey: string;
  listenPort: number;
  peers: DesiredPeer[];
}

/**
 * WireGuardConfigDiff: the smallest set of changes that turns the device's current configuration
 * into the desired one. Pure; applying its result and diffing again yields an empty update.
 */
export function diffWireGuardConfig(desired: DesiredConfig, current: WgDeviceState): WgConfigUpdate {
  const update: WgConfigUpdate = { peers: [] };
  const wantKey = clampPrivateKey(desired.privateKey);
  if (current.privateKey === null || clampPrivateKey(current.privateKey) !== wantKey)
    update.privateKey = wantKey;
  if (current.listenPort !== desired.listenPort) update.listenPort = desired.listenPort;

  const wanted = new Map(desired.peers.map((p) => [p.publicKey, p]));
  for (const peer of current.peers) {
    if (!wanted.has(peer.publicKey)) update.peers.push({ publicKey: peer.publicKey, remove: true });
  }
  const existing = new Map(current.peers.map((p) => [p.publicKey, p]));
  for (const want of desired.peers) {
    const have = existing.get(want.publicKey);
    const allowed = normalizeAllowedIps(want.allowedIps);
    const change: WgPeerUpdate = { publicKey: want.publicKey };
    const endpoint = want.endpoint !== undefined && want.endpoint !== have?.endpoint ? want.endpoint : null;
    if (endpoint !== null) change.endpoint = endpoint;
    const owned = want.endpoint !== undefined;
    if (!have) {
      change.allowedIps = allowed;
      if (owned) change.persistentKeepalive = PERSISTENT_KEEPALIVE_SECONDS;
      update.peers.push(change);
      continue;
    }
    if (!sameSet(normalizeAllowedIps(have.allowedIps), allowed)) change.allowedIps = allowed;
    if (owned && have.persistentKeepalive !== PERSISTENT_KEEPALIVE_SECONDS)
      change.persistentKeepalive = PERSISTENT_KEEPALIVE_SECONDS;
    if (Object.keys(change).length > 1) update.peers.push(change);
  }
  return update;
}

/** `100.64.0.2` and `100.64.0.2/32` mean the same; WireGuard reports the latter. */
export function normalizeAllowedIps(ips: readonly string[]): string[] {
  const out = ips.map((ip) => (ip.includes('/') ? ip : ip.includes(':') ? `${ip}/128` : `${ip}/32`));
  return [...new Set(out)].sort();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
