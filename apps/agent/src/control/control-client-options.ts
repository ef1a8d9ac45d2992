import type { Agent } from 'node:https';
import type { KeyPair } from '@trellis/crypto';
import type {
  BackoffOptions,
  PunchMessage,
  RelayPathMessage,
  RelayReleaseMessage,
  ResolveHost,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { Netmap } from './netmap-tracker';
import type { Timers } from './timers';

export interface ControlClientHandlers {
  /** A new complete netmap (after a snapshot or a delta). */
  onNetmap(netmap: Netmap, kind: 'snapshot' | 'delta'): void;
  onConnected(): void;
  onDisconnected(reason: string): void;
  /** The broker closed with deviceRemoved: this device is no longer enrolled. No reconnect. */
  onDeviceRemoved(): void;
  /** The broker coordinates a hole punch with a peer. */
  onPunch?(msg: PunchMessage): void;
  /** Use a relay allocation for a peer (the handler ignores peers it does not know). */
  onRelay?(msg: RelayPathMessage): void;
  /** The broker released a relay allocation. */
  onRelayRelease?(msg: RelayReleaseMessage): void;
  /** A ping's round trip: local send and receive times and the broker's clock (clock offset input). */
  onClockSample?(sample: { sentAt: number; serverTime: number; receivedAt: number }): void;
}

export interface ControlClientOptions {
  /** Instances of one broker (one database, one static key), tried in this order. */
  brokerUrls: readonly string[];
  agent: Agent;
  /** Every address of a broker host name (default: the system resolver, bounded). */
  resolveHost?: ResolveHost;
  deviceId: string;
  keyPair: KeyPair;
  brokerPublicKey: string;
  handlers: ControlClientHandlers;
  logger: Logger;
  timers?: Timers;
  backoff?: BackoffOptions;
  /** Serial of a netmap loaded from disk, sent as a hint. */
  lastSerial?: number;
  /** Pings right after authentication for the clock offset (default 3). */
  clockPings?: number;
}
