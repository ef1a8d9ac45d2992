/** What WireGuard reports about one peer (keys base64, as the rest of Trellis uses them). */
export interface WgPeerState {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  persistentKeepalive: number;
  /** Seconds since the epoch of the last handshake; 0 means never. */
  lastHandshakeSec: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDeviceState {
  privateKey: string | null;
  listenPort: number;
  /** The mark on WireGuard's own UDP packets (0: none); absent where a reader does not report it. */
  fwmark?: number;
  peers: WgPeerState[];
}

/** One peer's change; only the fields present are touched. */
export interface WgPeerUpdate {
  publicKey: string;
  remove?: boolean;
  endpoint?: string;
  persistentKeepalive?: number;
  /** Replaces the peer's allowed IPs with exactly these. */
  allowedIps?: string[];
}

export interface WgConfigUpdate {
  privateKey?: string;
  listenPort?: number;
  /** Marks WireGuard's own UDP packets (0 clears it): policy routing keeps them off the tunnel. */
  fwmark?: number;
  peers: WgPeerUpdate[];
}

export function isEmptyUpdate(u: WgConfigUpdate): boolean {
  return (
    u.privateKey === undefined && u.listenPort === undefined && u.fwmark === undefined && u.peers.length === 0
  );
}
