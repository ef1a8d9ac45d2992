/** IPC between the policy benchmark's orchestrator and its broker and client processes. */
export interface BenchDevice {
  deviceId: string;
  privateKey: string;
  publicKey: string;
}

export type BrokerCommand = { cmd: 'stats' } | { cmd: 'stop' };
export type BrokerReply =
  | {
      kind: 'ready';
      url: string;
      certPem: string;
      brokerPublicKey: string;
      account: string;
      adminSocket: string;
    }
  /** `loopMaxMs`: the longest the event loop was blocked since the previous stats. */
  | { kind: 'stats'; rss: number; cpuUs: number; connected: number; loopMaxMs: number }
  | { kind: 'error'; message: string };

/** What one client saw after `arm`: the first frame other than a pong, and how many came. */
export interface Arrival {
  /** When the first frame came (ms, nowMs clock); absent when none came. */
  at?: number;
  /** Its `type` (netmap, delta, …). */
  type?: string;
  /** Whether it named the watched device id (a delta about that device). */
  mentions?: boolean;
  frames: number;
  /** Times the broker closed this client's connection meanwhile (it reconnected after each). */
  dropped?: number;
}

export type ClientCommand =
  | { cmd: 'connect'; url: string; certPem: string; brokerPublicKey: string; devices: BenchDevice[] }
  /**
   * From now on record each client's first frame. `expected`: client indexes that must get one;
   * `arrived` is sent once all of them have (or after `timeoutMs`). `watch`: a device id to look for.
   */
  | { cmd: 'arm'; id: number; expected: number[]; watch?: string; timeoutMs: number }
  /** Replies `settled` once `count` clients are connected (or after `timeoutMs`). */
  | { cmd: 'settle'; count: number; timeoutMs: number }
  /** Stops recording and replies `collected` with every client's Arrival. */
  | { cmd: 'collect'; id: number }
  | { cmd: 'stop' };

export type ClientReply =
  | {
      kind: 'connected';
      count: number;
      failed: number;
      /** Attempts that failed and were retried, and why (error message -> count). */
      retries: number;
      retryReasons: Record<string, number>;
      snapshotBytes: number;
      elapsedMs: number;
    }
  | { kind: 'progress'; connected: number }
  | { kind: 'armed'; id: number }
  | { kind: 'arrived'; id: number; missing: number }
  | { kind: 'settled'; open: number; waitedMs: number }
  /** `dropped`: established connections the broker closed since the last collect, by close code. */
  | { kind: 'collected'; id: number; arrivals: Arrival[]; dropped: Record<string, number> }
  | { kind: 'error'; message: string };
