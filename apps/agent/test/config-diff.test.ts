import { generateKeyPair } from '@trellis/crypto';
import {
  type DesiredConfig,
  diffWireGuardConfig,
  PERSISTENT_KEEPALIVE_SECONDS,
} from '../src/wireguard/config-diff';
import { FirstCandidateSelector } from '../src/wireguard/endpoint-selector';
import { clampPrivateKey } from '../src/wireguard/keys';
import type { WgConfigUpdate, WgDeviceState } from '../src/wireguard/types';

/** Applies an update to a device state the way WireGuard would: the test's model of the device. */
function applyToState(state: WgDeviceState, u: WgConfigUpdate): WgDeviceState {
  const next: WgDeviceState = structuredClone(state);
  if (u.privateKey !== undefined) next.privateKey = u.privateKey;
  if (u.listenPort !== undefined) next.listenPort = u.listenPort;
  for (const p of u.peers) {
    const i = next.peers.findIndex((x) => x.publicKey === p.publicKey);
    if (p.remove) {
      if (i >= 0) next.peers.splice(i, 1);
      continue;
    }
    let peer = next.peers[i];
    if (!peer) {
      peer = {
        publicKey: p.publicKey,
        endpoint: null,
        allowedIps: [],
        persistentKeepalive: 0,
        lastHandshakeSec: 0,
        rxBytes: 0,
        txBytes: 0,
      };
      next.peers.push(peer);
    }
    if (p.endpoint !== undefined) peer.endpoint = p.endpoint;
    if (p.persistentKeepalive !== undefined) peer.persistentKeepalive = p.persistentKeepalive;
    if (p.allowedIps !== undefined) peer.allowedIps = [...p.allowedIps];
  }
  return next;
}

describe('WireGuardConfigDiff', () => {
  const self = generateKeyPair();
  const [a, b, c] = [generateKeyPair().publicKey, generateKeyPair().publicKey, generateKeyPair().publicKey];
  const selector = new FirstCandidateSelector();
  const empty: WgDeviceState = { privateKey: null, listenPort: 0, peers: [] };
  const desired: DesiredConfig = {
    privateKey: self.privateKey,
    listenPort: 51820,
    peers: [
      { publicKey: a!, allowedIps: ['100.64.0.2/32'], candidates: ['10.0.0.2:51820', '192.168.1.2:51820'] },
      { publicKey: b!, allowedIps: ['100.64.0.3'], candidates: [] },
    ],
  };

  it('configures a fresh device completely', () => {
    const u = diffWireGuardConfig(desired, empty, selector);
    expect(u.privateKey).toBe(clampPrivateKey(self.privateKey));
    expect(u.listenPort).toBe(51820);
    expect(u.peers).toEqual([
      {
        publicKey: a,
        endpoint: '10.0.0.2:51820',
        allowedIps: ['100.64.0.2/32'],
        persistentKeepalive: PERSISTENT_KEEPALIVE_SECONDS,
      },
      { publicKey: b, allowedIps: ['100.64.0.3/32'] },
    ]);
  });

  it('is idempotent: applying the same netmap twice yields no operations', () => {
    const once = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    const again = diffWireGuardConfig(desired, once, selector);
    expect(again).toEqual({ peers: [] });
  });

  it('removes peers no longer wanted, adds new ones, changes only what changed', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    const next: DesiredConfig = {
      ...desired,
      peers: [
        { publicKey: a!, allowedIps: ['100.64.0.2/32', '10.9.0.0/24'], candidates: ['10.0.0.2:51820'] },
        { publicKey: c!, allowedIps: ['100.64.0.4/32'], candidates: ['10.0.0.4:51820'] },
      ],
    };
    const u = diffWireGuardConfig(next, state, selector);
    expect(u.privateKey).toBeUndefined();
    expect(u.listenPort).toBeUndefined();
    expect(u.peers).toEqual([
      { publicKey: b, remove: true },
      { publicKey: a, allowedIps: ['10.9.0.0/24', '100.64.0.2/32'] },
      {
        publicKey: c,
        endpoint: '10.0.0.4:51820',
        allowedIps: ['100.64.0.4/32'],
        persistentKeepalive: PERSISTENT_KEEPALIVE_SECONDS,
      },
    ]);
    expect(diffWireGuardConfig(next, applyToState(state, u), selector)).toEqual({ peers: [] });
  });

  it('keeps an endpoint that is one of the candidates (roaming), replaces one that is not', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    state.peers[0]!.endpoint = '192.168.1.2:51820'; // WireGuard roamed to the second candidate
    expect(diffWireGuardConfig(desired, state, selector)).toEqual({ peers: [] });
    state.peers[0]!.endpoint = '203.0.113.9:40000'; // not a candidate any more
    expect(diffWireGuardConfig(desired, state, selector).peers).toEqual([
      { publicKey: a, endpoint: '10.0.0.2:51820' },
    ]);
  });

  it('sets no endpoint when a peer has no candidates and leaves a roamed one alone', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    state.peers[1]!.endpoint = '198.51.100.7:51820'; // b reached us first; WireGuard learned it
    const u = diffWireGuardConfig(desired, state, selector);
    // No endpoint change, but now that b has an endpoint it gets keepalives.
    expect(u.peers).toEqual([{ publicKey: b, persistentKeepalive: PERSISTENT_KEEPALIVE_SECONDS }]);
  });

  it('changes the private key and listen port only when they differ', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    const rotated = generateKeyPair();
    const u = diffWireGuardConfig(
      { ...desired, privateKey: rotated.privateKey, listenPort: 51821 },
      state,
      selector,
    );
    expect(u).toEqual({ privateKey: clampPrivateKey(rotated.privateKey), listenPort: 51821, peers: [] });
  });

  it('compares private keys in clamped form, as WireGuard reports them', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty, selector));
    expect(state.privateKey).toBe(clampPrivateKey(self.privateKey));
    expect(diffWireGuardConfig(desired, state, selector).privateKey).toBeUndefined();
  });
});
