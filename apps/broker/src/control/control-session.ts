/** What the hub needs of one authenticated control connection. */
export interface ControlSession {
  readonly deviceId: string;
  readonly accountId: string;
  readonly connectionId: string;
  /** The key the connection authenticated with (absent in tests that build sessions by hand). */
  readonly publicKey?: string;
  /** Serial of the last netmap or delta frame sent on this connection (before the snapshot: its minimum). */
  serial: number;
  /** Round trip to the agent (WebSocket ping/pong), ms; null until measured. */
  rttMs(): number | null;
  /** The agent's latest round trips to relays (relay id → ms, `netinfo.relayRttMs`); empty until reported. */
  relayRttMs(): Readonly<Record<string, number>>;
  /**
   * Takes the compact netmap of capability 3 and up: snapshots as binary raw DEFLATE, presence
   * changes as `online` / `offline` lists. Absent: an older agent.
   */
  readonly compact?: boolean;
  /** A text frame, or a binary one (a compressed snapshot: only when compact). */
  send(frame: string | Buffer, type: 'netmap' | 'delta' | 'punch' | 'relay' | 'relay-release'): void;
  close(code: number, reason: string): void;
}
