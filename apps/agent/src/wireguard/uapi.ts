import { keyFromHex, keyToHex } from '@trellis/crypto';
import type { WgConfigUpdate, WgDeviceState, WgPeerState } from './types';
import { assertWritableUpdate } from './update-check';

/**
 * WireGuard's cross-platform UAPI text protocol (https://www.wireguard.com/xplatform/):
 * `key=value` lines, keys in hex, a blank line ends a message, `errno=N` ends every answer.
 */
export class UapiError extends Error {}

/** Parses the answer to `get=1` (including its final `errno=` line). */
export function parseUapiGet(text: string): WgDeviceState {
  const device: WgDeviceState = { privateKey: null, listenPort: 0, peers: [] };
  let peer: WgPeerState | null = null;
  let errno: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UapiError(`malformed UAPI line: ${line}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    switch (key) {
      case 'errno':
        errno = toInt(key, value);
        break;
      case 'private_key':
        device.privateKey = isZeroKey(value) ? null : keyFromHex(value);
        break;
      case 'listen_port':
        device.listenPort = toInt(key, value);
        break;
      case 'fwmark':
        device.fwmark = toInt(key, value);
        break;
      case 'public_key':
        peer = {
          publicKey: keyFromHex(value),
          endpoint: null,
          allowedIps: [],
          persistentKeepalive: 0,
          lastHandshakeSec: 0,
          rxBytes: 0,
          txBytes: 0,
        };
        device.peers.push(peer);
        break;
      default:
        if (peer) applyPeerField(peer, key, value);
    }
  }
  if (errno === null) throw new UapiError('UAPI answer without errno');
  if (errno !== 0) throw new UapiError(`UAPI get failed: errno=${errno}`);
  return device;
}

function applyPeerField(peer: WgPeerState, key: string, value: string): void {
  switch (key) {
    case 'endpoint':
      peer.endpoint = value;
      break;
    case 'allowed_ip':
      peer.allowedIps.push(value);
      break;
    case 'persistent_keepalive_interval':
      peer.persistentKeepalive = toInt(key, value);
      break;
    case 'last_handshake_time_sec':
      peer.lastHandshakeSec = toInt(key, value);
      break;
    case 'rx_bytes':
      peer.rxBytes = toInt(key, value);
      break;
    case 'tx_bytes':
      peer.txBytes = toInt(key, value);
      break;
    // preshared_key, last_handshake_time_nsec, protocol_version: not used.
  }
}

/**
 * Serialises an update as a complete `set=1` request, ending with the blank line. Every value is
 * checked first: one with a line break in it would add lines of its own (another peer).
 */
export function serializeUapiSet(update: WgConfigUpdate): string {
  assertWritableUpdate(update);
  const lines = ['set=1'];
  if (update.privateKey !== undefined) lines.push(`private_key=${keyToHex(update.privateKey)}`);
  if (update.listenPort !== undefined) lines.push(`listen_port=${update.listenPort}`);
  if (update.fwmark !== undefined) lines.push(`fwmark=${update.fwmark}`);
  for (const p of update.peers) {
    lines.push(`public_key=${keyToHex(p.publicKey)}`);
    if (p.remove) {
      lines.push('remove=true');
      continue;
    }
    if (p.endpoint !== undefined) lines.push(`endpoint=${p.endpoint}`);
    if (p.persistentKeepalive !== undefined) {
      lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    }
    if (p.allowedIps !== undefined) {
      lines.push('replace_allowed_ips=true');
      for (const ip of p.allowedIps) lines.push(`allowed_ip=${ip}`);
    }
  }
  return `${lines.join('\n')}\n\n`;
}

/** Parses the answer to `set=1`: `errno=0` or a failure. */
export function parseUapiSetResult(text: string): void {
  const m = /^errno=(-?\d+)$/m.exec(text);
  if (!m) throw new UapiError(`malformed UAPI set answer: ${JSON.stringify(text.slice(0, 80))}`);
  if (m[1] !== '0') throw new UapiError(`UAPI set failed: errno=${m[1]}`);
}

function toInt(key: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new UapiError(`UAPI ${key} is not a number: ${value}`);
  return Number(value);
}

function isZeroKey(hex: string): boolean {
  return /^0{64}$/.test(hex);
}
