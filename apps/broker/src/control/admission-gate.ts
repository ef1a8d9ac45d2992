import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'node:net';
import { type TLSSocket, Server as TlsServer } from 'node:tls';

/**
 * How many connections may be in their TLS handshake or waiting for their first netmap at once,
 * by default. A few seconds of the broker's work in a storm (~3 ms per device here, bench netmap),
 * well inside the agents' 10 s authentication timeout.
 */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 512;

/**
 * How long a connection beyond the limit is held, unread, waiting for a slot. Its agent's TLS
 * handshake and WebSocket upgrade must still fit in the 10 s AUTH_TIMEOUT_MS after it is let in:
 * with 512 pending, those take ~1–2 s here.
 */
export const DEFAULT_MAX_HOLD_MS = 6_000;

/** How many connections may be held per pending slot, by default. */
export const HELD_PER_PENDING = 8;

export interface AdmissionGateOptions {
  /** 0: no limit. */
  maxPending: number;
  /** Connections held waiting for a slot beyond which new ones are closed; default HELD_PER_PENDING × maxPending. */
  maxHeld?: number;
  /** How long one is held before it is closed instead; default DEFAULT_MAX_HOLD_MS. */
  maxHoldMs?: number;
  /**
   * Connections one source address may have held at once (0: no cap); the per-address connection
   * cap only sees a connection once it is let in.
   */
  maxHeldPerAddress?: number;
  /** Control connections accepted and not yet given their netmap. */
  admitting(): number;
  /** Called for each connection refused or dropped from the hold, with how many were pending. */
  onRefused?(pending: number): void;
  now?(): number;
}

/** A connection accepted by the listener and not yet read: `admit` hands it to the server. */
interface Held {
  socket: Socket;
  admit: (socket: Socket) => void;
  since: number;
  address: string;
}

/** A reset while held (a PROXY-protocol socket was read) must not be an unhandled 'error'. */
const ignoreError = () => undefined;

const keyOf = (s: { remoteAddress?: string; remotePort?: number }) =>
  s.remoteAddress === undefined ? undefined : `${s.remoteAddress}|${s.remotePort}`;

/**
 * Admission control for a reconnection storm. Without it, 10,000 agents reconnecting at once
 * filled the listen queue; handshakes and netmaps waited longer than the agents' and the broker's
 * timeouts, and every retry joined the back of the queue (the storm never settled; bench netmap).
 * At most `maxPending` connections are in their TLS handshake or awaiting their netmap. The
 * listener offers each new connection before reading it: beyond the limit it waits, unread, in a
 * first-come queue and is let in when a slot frees, so a storm keeps the broker busy without
 * paying twice for an attempt closed and retried. One held longer than `maxHoldMs`, or arriving
 * with the queue full, is closed before any handshake work; its client backs off and comes back.
 * It counts every connection on the port (API requests too): under that load each would wait as long.
 */
export class AdmissionGate {
  private readonly handshaking = new Map<string, Socket>();
  private readonly held: Held[] = [];
  private readonly heldByAddress = new Map<string, number>();
  private expiry: NodeJS.Timeout | undefined;
  private lastTurnedBackAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;
  private readonly maxHeld: number;
  private readonly maxHoldMs: number;

  constructor(private readonly opts: AdmissionGateOptions) {
    this.now = opts.now ?? Date.now;
    this.maxHeld = opts.maxHeld ?? HELD_PER_PENDING * opts.maxPending;
    this.maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  }

  /**
   * Counts the connections `server` was handed until they are through their TLS handshake or, on
   * a plain server (behind a TLS-terminating proxy), until their first request or upgrade; returns
   * a function that stops counting.
   */
  attach(server: Server): () => void {
    const tls = server instanceof TlsServer;
    const onConnection = (socket: Socket) => this.accepted(socket);
    // Through its handshake (TLS), or its first request or upgrade (plain). The TLS socket wraps
    // the counted one: both have the same key.
    const through = (socket: TLSSocket | Socket) => {
      const key = keyOf(socket);
      if (key !== undefined && this.handshaking.delete(key)) this.drain();
    };
    const onRequest = (req: IncomingMessage) => through(req.socket);
    server.on('connection', onConnection);
    if (tls) server.on('secureConnection', through);
    else {
      server.on('request', onRequest);
      server.on('upgrade', onRequest);
    }
    return () => {
      server.off('connection', onConnection);
      server.off('secureConnection', through);
      server.off('request', onRequest);
      server.off('upgrade', onRequest);
      this.handshaking.clear();
      this.dropHeld();
    };
  }

  /**
   * A connection the listener accepted and has not read: let in through `admit` now, held until a
   * slot frees, or closed.
   */
  offer(socket: Socket, admit: (socket: Socket) => void): void {
    if (this.opts.maxPending <= 0 || (this.held.length === 0 && this.pending() < this.opts.maxPending)) {
      admit(socket);
      return;
    }
    const address = socket.remoteAddress ?? '';
    const fromAddress = this.heldByAddress.get(address) ?? 0;
    const perAddress = this.opts.maxHeldPerAddress ?? 0;
    if (this.held.length >= this.maxHeld || (perAddress > 0 && fromAddress >= perAddress)) {
      this.turnBack(socket);
      return;
    }
    this.heldByAddress.set(address, fromAddress + 1);
    socket.on('error', ignoreError);
    this.held.push({ socket, admit, since: this.now(), address });
    this.expiry ??= setInterval(() => this.drain(), Math.max(50, Math.min(250, this.maxHoldMs / 4)));
    this.expiry.unref?.();
  }

  /** Lets held connections in while there are slots; call when a pending connection got through. */
  drain(): void {
    const now = this.now();
    while (this.held.length > 0) {
      const next = this.held[0]!;
      const stale = now - next.since > this.maxHoldMs;
      if (!stale && !next.socket.destroyed && this.pending() >= this.opts.maxPending) break;
      this.release(this.held.shift()!);
      if (next.socket.destroyed) continue;
      if (stale) this.turnBack(next.socket);
      else next.admit(next.socket);
    }
    if (this.held.length === 0 && this.expiry) {
      clearInterval(this.expiry);
      this.expiry = undefined;
    }
  }

  /** Connections let in and not through their TLS handshake (plain: their first request) yet. */
  get pendingHandshakes(): number {
    return this.handshaking.size;
  }

  /** Connections waiting, unread, for a slot. */
  get heldConnections(): number {
    return this.held.length;
  }

  /**
   * Whether a connection was refused, dropped from the hold, or closed in its TLS handshake (its
   * client gave up), within the last `ms`: its client is coming back.
   */
  turnedBackWithin(ms: number): boolean {
    return this.now() - this.lastTurnedBackAt < ms;
  }

  private pending(): number {
    return this.handshaking.size + this.opts.admitting();
  }

  private turnBack(socket: Socket): void {
    this.lastTurnedBackAt = this.now();
    this.opts.onRefused?.(this.pending());
    socket.destroy();
  }

  /** Out of the hold: its errors are the server's again. */
  private release(h: Held): void {
    h.socket.off('error', ignoreError);
    const left = (this.heldByAddress.get(h.address) ?? 1) - 1;
    if (left > 0) this.heldByAddress.set(h.address, left);
    else this.heldByAddress.delete(h.address);
  }

  private dropHeld(): void {
    for (const h of this.held.splice(0)) {
      this.release(h);
      h.socket.destroy();
    }
    this.drain();
  }

  private accepted(socket: Socket): void {
    const key = keyOf(socket);
    if (key === undefined) return; // already closed
    this.handshaking.set(key, socket);
    socket.once('close', () => {
      if (this.handshaking.get(key) !== socket) return;
      this.handshaking.delete(key);
      this.lastTurnedBackAt = this.now();
      this.drain();
    });
  }
}
