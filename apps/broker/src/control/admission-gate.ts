import type { Server, Socket } from 'node:net';
import { type TLSSocket, Server as TlsServer } from 'node:tls';

/**
 * How many connections may be in their TLS handshake or waiting for their first netmap at once,
 * by default. A few seconds of the broker's work in a storm (~3 ms per device here, bench netmap),
 * well inside the agents' 10 s authentication timeout.
 */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 512;

export interface AdmissionGateOptions {
  /** 0: no limit. */
  maxPending: number;
  /** Control connections accepted and not yet given their netmap. */
  admitting(): number;
  /** Called for each connection refused, with how many were pending. */
  onRefused?(pending: number): void;
  now?(): number;
}

const keyOf = (s: { remoteAddress?: string; remotePort?: number }) =>
  s.remoteAddress === undefined ? undefined : `${s.remoteAddress}|${s.remotePort}`;

/**
 * Admission control for a reconnection storm. Without it, 10,000 agents reconnecting at once
 * filled the listen queue; handshakes and netmaps waited longer than the agents' and the broker's
 * timeouts, and every retry joined the back of the queue (the storm never settled; bench netmap).
 * With more than `maxPending` connections in their TLS handshake or awaiting their netmap, a new
 * TCP connection is closed at once, before any handshake work; its client backs off and comes back
 * while those admitted get through in time. It counts every connection on the port (API requests
 * too): under that load every one of them would wait as long.
 */
export class AdmissionGate {
  private readonly handshaking = new Map<string, Socket>();
  private lastTurnedBackAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;
  /** A plain server (behind a TLS-terminating proxy) has no handshake stage to count. */
  private handshakes = true;

  constructor(private readonly opts: AdmissionGateOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Guards `server` (TLS or plain); returns a function that stops guarding it. */
  attach(server: Server): () => void {
    this.handshakes = server instanceof TlsServer;
    const onConnection = (socket: Socket) => this.accepted(socket);
    const onSecure = (tls: TLSSocket) => {
      const key = keyOf(tls);
      if (key !== undefined) this.handshaking.delete(key);
    };
    server.on('connection', onConnection);
    server.on('secureConnection', onSecure);
    return () => {
      server.off('connection', onConnection);
      server.off('secureConnection', onSecure);
      this.handshaking.clear();
    };
  }

  /** Connections in their TLS handshake now. */
  get pendingHandshakes(): number {
    return this.handshaking.size;
  }

  /**
   * Whether a connection was refused, or closed in its TLS handshake (its client gave up), within
   * the last `ms`: its client is coming back.
   */
  turnedBackWithin(ms: number): boolean {
    return this.now() - this.lastTurnedBackAt < ms;
  }

  private accepted(socket: Socket): void {
    const key = keyOf(socket);
    if (key === undefined) return; // already closed
    const pending = this.handshaking.size + this.opts.admitting();
    if (this.opts.maxPending > 0 && pending >= this.opts.maxPending) {
      this.lastTurnedBackAt = this.now();
      this.opts.onRefused?.(pending);
      socket.destroy();
      return;
    }
    if (!this.handshakes) return;
    this.handshaking.set(key, socket);
    socket.once('close', () => {
      if (this.handshaking.get(key) !== socket) return;
      this.handshaking.delete(key);
      this.lastTurnedBackAt = this.now();
    });
  }
}
