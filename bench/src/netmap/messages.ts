/** IPC between the benchmark's orchestrator and its broker and client processes. */
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
    }
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
  | { cmd: 'stop' };

export type ClientReply =
  | { kind: 'connected'; count: number; failed: number; snapshotBytes: number; elapsedMs: number }
  | { kind: 'progress'; connected: number }
  | { kind: 'armed'; id: number }
  | { kind: 'arrivals'; id: number; times: number[]; missing: number }
  | { kind: 'error'; message: string };
