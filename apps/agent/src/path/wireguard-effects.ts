import { PERSISTENT_KEEPALIVE_SECONDS } from '../wireguard/config-diff';
import type { WgConfigUpdate, WgDeviceState } from '../wireguard/types';
import type { HandshakeObservation } from './path-manager';
import type { PathEffect } from './path-types';

/** A peer's persistent keepalive (seconds) while its path wants keepalive, and while it does not. */
export interface KeepaliveSetting {
  on: number;
  off: number;
}

/**
 * The WireGuard change for a `set-endpoint`, `keepalive` or `readd-peer` effect, for WireGuardBackend.apply.
 * A re-add is one transaction (UAPI `set=1`, or one `wg set` command): remove the peer, then add it
 * back with the endpoint, its allowed IPs and persistent keepalive. Turning keepalive on for a peer
 * makes WireGuard send a keepalive, and with no session that is a fresh handshake initiation, at once.
 * `allowedIps` are the peer's from the netmap; null when the peer is not (yet) configured: a re-add
 * then does nothing rather than create a peer the netmap does not have.
 */
export function wgUpdateForEffect(
  effect: Extract<PathEffect, { type: 'set-endpoint' | 'readd-peer' | 'keepalive' }>,
  allowedIps: string[] | null,
  /** Seconds while the path wants keepalive, and while it does not (a gateway's peers: pinned on). */
  keepalive: KeepaliveSetting = { on: PERSISTENT_KEEPALIVE_SECONDS, off: 0 },
): WgConfigUpdate {
  if (allowedIps === null) return { peers: [] };
  const keepaliveOf = (on: boolean) => (on ? keepalive.on : keepalive.off);
  if (effect.type === 'keepalive')
    return { peers: [{ publicKey: effect.publicKey, persistentKeepalive: keepaliveOf(effect.on) }] };
  if (effect.type === 'set-endpoint') {
    const persistentKeepalive = keepaliveOf(effect.keepalive);
    return { peers: [{ publicKey: effect.publicKey, endpoint: effect.endpoint, persistentKeepalive }] };
  }
  return {
    peers: [
      { publicKey: effect.publicKey, remove: true },
      {
        publicKey: effect.publicKey,
        endpoint: effect.endpoint,
        persistentKeepalive: keepalive.on,
        allowedIps,
      },
    ],
  };
}

/** What the PathManager needs from a UAPI `get` (handshake seconds → ms, 0 stays "never"). */
export function observationsFromDevice(state: WgDeviceState): HandshakeObservation[] {
  return state.peers.map((p) => ({
    publicKey: p.publicKey,
    lastHandshakeMs: p.lastHandshakeSec * 1000,
    endpoint: p.endpoint,
    txBytes: p.txBytes,
    rxBytes: p.rxBytes,
  }));
}
