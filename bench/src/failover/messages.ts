/** IPC between the failover bench's orchestrator and its broker and client processes. */
import type { BenchDevice } from '../netmap/messages';

export type { BenchDevice };

export interface BrokerArgs {
  dataDir: string;
  databaseUrl: string;
  logLevel: string;
  /** The first instance's certificate and key: every instance serves the same one. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

export type BrokerCommand = { cmd: 'stats' } | { cmd: 'stop' };
export type BrokerReply =
  | {
      kind: 'ready';
      url: string;
      certPem: string;
      certFile: string;
      brokerPublicKey: string;
      /** Only the instance that found the database empty has it. */
      setupKey?: string;
    }
  | { kind: 'stats'; connected: number; rss: number; cpuUs: number }
  | { kind: 'error'; message: string };

/** A simulated device: its broker list (indexes into `brokers`, home first). */
export interface SimDeviceSpec extends BenchDevice {
  order: number[];
}

export type ClientCommand =
  | {
      cmd: 'start';
      brokers: string[];
      certPem: string;
      brokerPublicKey: string;
      devices: SimDeviceSpec[];
      /** SimDeviceIo.jitterMs. */
      jitterMs: number;
    }
  /** Connects every device to broker `via` (not its home: the one-instance baseline); replies `connected`. */
  | { cmd: 'connect'; via: number; timeoutMs: number }
  /** The devices not at home move to it (make before break); replies `connected`. */
  | { cmd: 'rehome'; timeoutMs: number }
  /** Every ready device but `exclude` must see a delta carrying `marker`; replies `armed`, then `arrivals`. */
  | { cmd: 'expect'; id: number; marker: string; exclude: number; timeoutMs: number }
  /** Device `index` sends an `endpoints` message; replies `sent`. */
  | { cmd: 'endpoints'; index: number; endpoints: string[] }
  /**
   * From now on: the devices on broker `victim` must come back on another one; `observers` parse
   * every delta for the victim's devices' online state. Replies `armed` (id 0), then `failover` once
   * every such device has a snapshot from another broker or after `timeoutMs`.
   */
  | { cmd: 'arm-failover'; victim: number; observers: number[]; timeoutMs: number }
  /** Replies `observed`: what the observers saw since the arming (they stop looking). */
  | { cmd: 'observed' }
  /** Replies `placement`: how many ready devices each broker holds. */
  | { cmd: 'placement' }
  | { cmd: 'stop' };

export interface FailoverDevice {
  index: number;
  /** When its ready connection closed, when it next had a snapshot (null: not within the timeout). */
  closedAt: number | null;
  readyAt: number | null;
  /** The successful attempt's WebSocket open and challenge. */
  openAt: number | null;
  challengeAt: number | null;
  /** Connection attempts from the close to the snapshot (1: the next broker took it at once). */
  attempts: number;
  /** Whether it came back with a delta from the netmap it held rather than a snapshot. */
  resumed: boolean;
  broker: number;
}

export interface ObserverView {
  broker: number;
  /** Per victim device this observer saw go offline: when; and when it saw it online again. */
  offlineAt: number[];
  onlineAgainAt: number[];
}

export type ClientReply =
  | { kind: 'started' }
  /** `failures`: attempts that failed and were retried (message → count). */
  | {
      kind: 'connected';
      count: number;
      elapsedMs: number;
      placement: number[];
      failures: Record<string, number>;
    }
  | { kind: 'progress'; ready: number }
  | { kind: 'armed'; id: number }
  | { kind: 'sent'; at: number }
  | { kind: 'arrivals'; id: number; times: Array<{ at: number; broker: number }>; missing: number }
  | {
      kind: 'failover';
      devices: FailoverDevice[];
      /** Devices on other brokers whose connection closed meanwhile (should be none). */
      collateral: number;
      /** Why attempts failed: message → count. */
      failures: Record<string, number>;
      /** CPU of this client process from the arming to the report. */
      cpuMs: number;
    }
  | { kind: 'observed'; observers: ObserverView[] }
  | { kind: 'placement'; placement: number[] }
  | { kind: 'error'; message: string };
