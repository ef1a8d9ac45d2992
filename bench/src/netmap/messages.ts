/** IPC between the benchmark's orchestrator and its broker and client processes. */
export interface BenchDevice {
  deviceId: string;
  privateKey: string;
  publicKey: string;
}

/** `gc`: collect before reading memory (RSS figures); left out where a CPU window is measured. */
export type BrokerCommand =
  | { cmd: 'stats'; gc: boolean }
  /** Only with BENCH_PROFILE set: start, or stop and write, the broker's CPU profile. */
  | { cmd: 'profile-start' }
  | { cmd: 'profile-stop'; name: string }
  | { cmd: 'stop' };
export type BrokerReply =
  | {
      kind: 'ready';
      url: string;
      /** Where the broker itself listens (behind `--proxy haproxy` not the URL's port). */
      port: number;
      certPem: string;
      brokerPublicKey: string;
      ownerEmail: string;
      ownerPassword: string;
      setupKey: string;
    }
  | {
      kind: 'stats';
      rss: number;
      heapUsed: number;
      cpuUserUs: number;
      cpuSystemUs: number;
      connected: number;
      /** Device pairs the broker's pair-path cores hold. */
      pathPairs: number;
      /** HAProxy's RSS with `--proxy haproxy` (filled in by the orchestrator), else 0. */
      proxyRss?: number;
    }
  | { kind: 'profiling' }
  | { kind: 'profiled'; file: string }
  | { kind: 'error'; message: string };

export type ClientCommand =
  | { cmd: 'connect'; url: string; certPem: string; brokerPublicKey: string; devices: BenchDevice[] }
  | {
      cmd: 'expect';
      id: number;
      kind: 'join' | 'remove';
      publicKey?: string;
      deviceId?: string;
      timeoutMs: number;
    }
  /** Each entry: client `index` sends `want-path` for `peerId`; replies `wanted`. */
  | { cmd: 'want'; wants: Array<{ index: number; peerId: string }>; timeoutMs: number }
  /** Every client drops its connection at once and reconnects (as after a broker restart); replies `stormed`. */
  | { cmd: 'storm'; url: string; certPem: string; brokerPublicKey: string; timeoutMs: number }
  | { cmd: 'stop' };

export type ClientReply =
  | { kind: 'connected'; count: number; failed: number; snapshotBytes: number; elapsedMs: number }
  | { kind: 'progress'; connected: number }
  | { kind: 'armed'; id: number }
  | { kind: 'arrivals'; id: number; times: number[]; missing: number }
  /** Per answered want: ms from sending it to the first `relay` or `punch` for that peer. */
  | { kind: 'wanted'; times: number[]; missing: number; relays: number; punches: number }
  | {
      kind: 'stormed';
      count: number;
      failed: number;
      /** Connection attempts that failed and were retried after a backoff. */
      retries: number;
      /** Why attempts failed: error message (`closed <code> before snapshot`, …) → count. */
      retryReasons: Record<string, number>;
      /** Clients that got a delta from the netmap they held instead of a snapshot. */
      resumed: number;
      snapshotBytes: number;
      elapsedMs: number;
    }
  | { kind: 'error'; message: string };

/** The fake relay (relay-process): registered on the broker's relay control channel. */
export type RelayCommand = { cmd: 'stats' } | { cmd: 'stop' };
export type RelayReply =
  | { kind: 'ready'; relayId: string }
  | { kind: 'stats'; allocated: number; released: number; pongs: number }
  | { kind: 'error'; message: string };
