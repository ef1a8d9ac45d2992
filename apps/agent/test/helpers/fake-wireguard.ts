import { publicKeyFromPrivate } from '@trellis/crypto';
import type { WireGuardBackend } from '../../src/wireguard/backend';
import type { WgConfigUpdate, WgDeviceState, WgPeerState } from '../../src/wireguard/types';

/** A WireGuard that keeps what it is told, as the real one does. */
export class FakeWireGuard implements WireGuardBackend {
  readonly kind = 'userspace' as const;
  constructor(readonly interfaceName = 'trlkey0') {}
  privateKey: string | null = null;
  private readonly peers = new Map<string, WgPeerState>();
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.privateKey = null;
    this.peers.clear();
  }
  onRecreated(): void {}
  async getState(): Promise<WgDeviceState> {
    return { privateKey: this.privateKey, listenPort: 51820, peers: [...this.peers.values()] };
  }
  async apply(u: WgConfigUpdate): Promise<void> {
    if (u.privateKey !== undefined) this.privateKey = u.privateKey;
    for (const p of u.peers) {
      if (p.remove) {
        this.peers.delete(p.publicKey);
        continue;
      }
      const row = this.peers.get(p.publicKey) ?? {
        publicKey: p.publicKey,
        endpoint: null,
        allowedIps: [],
        persistentKeepalive: 0,
        lastHandshakeSec: 0,
        rxBytes: 0,
        txBytes: 0,
      };
      if (p.endpoint !== undefined) row.endpoint = p.endpoint;
      if (p.allowedIps) row.allowedIps = p.allowedIps;
      if (p.persistentKeepalive !== undefined) row.persistentKeepalive = p.persistentKeepalive;
      this.peers.set(p.publicKey, row);
    }
  }
  get publicKey(): string | null {
    return this.privateKey === null ? null : publicKeyFromPrivate(this.privateKey);
  }
}
