import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, MAX_CONTROL_FRAME_BYTES } from '@trellis/proto';
import { WebSocketServer } from 'ws';
import { AdmissionGate } from './admission-gate';
import { ControlConnection, type ControlConnectionDeps } from './control-connection';
import { OfflineGrace } from './offline-grace';

export interface ControlServerOptions extends Omit<ControlConnectionDeps, 'offlineGrace' | 'onAttached'> {
  heartbeatIntervalMs: number;
  /** How long after its connection closed a device is marked offline (0: at once); see OfflineGrace. */
  offlineGraceMs: number;
  /** See BrokerOptions.reconnectWindowMs. */
  reconnectWindowMs: number;
  /** Connections in their TLS handshake or awaiting their netmap beyond which new ones wait. */
  maxPendingConnections: number;
  /** How long a connection beyond those waits for a slot; AdmissionGate's default if unset. */
  admissionHoldMs?: number;
  /** Connections one address may have waiting for a slot (0: no cap): its connection cap. */
  maxHeldPerAddress: number;
}

/** At most one "refusing" log line per this long: a storm refuses thousands. */
const REFUSED_LOG_INTERVAL_MS = 60_000;

/**
 * The device control channel WebSocket; the broker's upgrade router hands it API_PATHS.control
 * upgrades (one HTTPS server carries several WebSocket paths). One sweep per heartbeat interval
 * closes connections silent for three intervals (no timer per connection).
 */
export class ControlServer {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<ControlConnection>();
  /** Connections not yet given their netmap: while there are any, offline marks wait (OfflineGrace). */
  private readonly admitting = new Set<ControlConnection>();
  /** When a connection last closed before its netmap (its agent gave up and retries). */
  private lastUnadmittedCloseAt = Number.NEGATIVE_INFINITY;
  private readonly sweep: NodeJS.Timeout;
  private readonly offlineGrace: OfflineGrace;
  private readonly gate: AdmissionGate;

  constructor(private readonly opts: ControlServerOptions) {
    let refusedLogged = Number.NEGATIVE_INFINITY;
    this.gate = new AdmissionGate({
      maxPending: opts.maxPendingConnections,
      maxHoldMs: opts.admissionHoldMs,
      maxHeldPerAddress: opts.maxHeldPerAddress,
      admitting: () => this.admitting.size,
      onRefused: (pending) => {
        opts.metrics.connectionsRefused.inc();
        if (Date.now() - refusedLogged < REFUSED_LOG_INTERVAL_MS) return;
        refusedLogged = Date.now();
        opts.logger.warn({ pending }, 'refusing connections: too many waiting for admission');
      },
    });
    opts.metrics.trackAdmission(
      () => this.gate.pendingHandshakes + this.admitting.size,
      () => this.gate.heldConnections,
    );
    this.offlineGrace = new OfflineGrace(
      opts.offlineGraceMs,
      (deviceId, connectionId) => opts.devices.markOffline(deviceId, connectionId),
      (err) => opts.logger.error({ err: String(err) }, 'marking device offline failed'),
      { admitting: () => this.storming, onHeld: () => opts.metrics.offlineMarksHeld.inc() },
    );
    const deps: ControlConnectionDeps = {
      ...opts,
      offlineGrace: this.offlineGrace,
      onAttached: (conn) => {
        if (this.admitting.delete(conn)) this.gate.drain();
      },
    };
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CONTROL_FRAME_BYTES });
    this.wss.on('connection', (ws, req) => {
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const conn = new ControlConnection(ws, deps, remote, req.socket.remoteAddress);
      this.connections.add(conn);
      this.admitting.add(conn);
      ws.on('close', (code) => {
        this.connections.delete(conn);
        if (this.admitting.delete(conn)) {
          this.lastUnadmittedCloseAt = Date.now();
          this.gate.drain();
        }
        if (code === 1009) {
          opts.metrics.error('frame_too_large');
          opts.logger.warn({ remote, code }, 'control frame larger than the limit');
        }
      });
    });
    this.wss.on('error', (err) => opts.logger.error({ err: err.message }, 'control server error'));
    this.sweep = setInterval(() => this.closeSilent(), opts.heartbeatIntervalMs);
    this.sweep.unref();
  }

  /**
   * Whether devices are still coming back: connections wait for their netmap, or within the
   * reconnect window (an agent's longest backoff, or the grace if longer) one was turned away or
   * closed before its netmap: its agent retries by then. Offline marks and idle account netmaps wait meanwhile. Holding only for
   * the grace was not enough: at 10,000 a storm's retries left a 10 s gap with nothing pending, the
   * held marks of the devices still backing off all fired, and every later resume became a snapshot.
   */
  get storming(): boolean {
    if (this.admitting.size > 0) return true;
    const window = Math.max(this.opts.offlineGraceMs, this.opts.reconnectWindowMs);
    return this.gate.turnedBackWithin(window) || Date.now() - this.lastUnadmittedCloseAt < window;
  }

  /** Counts the handshakes of the server whose upgrades this handles; returns its undo. */
  guard(server: Server): () => void {
    return this.gate.attach(server);
  }

  /** A new, unread connection to the broker's port: `admit` hands it to the server (AdmissionGate). */
  offer(socket: Socket, admit: (socket: Socket) => void): void {
    this.gate.offer(socket, admit);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private closeSilent(): void {
    const cutoff = Date.now() - 3 * this.opts.heartbeatIntervalMs;
    for (const conn of this.connections) {
      // A broker slow to send the snapshot (a reconnection storm) must not close the agents waiting for it.
      if (conn.lastActivity >= cutoff || conn.awaitingBroker) continue;
      this.opts.metrics.error('heartbeat_timeout');
      this.opts.logger.warn({ deviceId: conn.deviceId }, 'control connection silent too long');
      conn.close(CloseCode.heartbeatTimeout, 'heartbeat timeout');
    }
  }

  get size(): number {
    return this.connections.size;
  }

  /**
   * Closes every control connection (their agents reconnect) and waits for their offline updates,
   * made at once: the instance is stopping or was taken over, so nobody would keep them.
   */
  async closeAll(code: number, reason: string): Promise<void> {
    const open = [...this.connections];
    for (const conn of open) conn.closeNow(code, reason);
    await Promise.all(open.map((c) => c.drained()));
  }

  /** Devices whose connection closed and that are not marked offline yet (grace running). */
  get offlinePending(): number {
    return this.offlineGrace.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    // Their offline updates must reach the database before it is closed. Those still in their
    // grace are left to the lease's release, which marks every device of this instance offline.
    await this.closeAll(1001, 'broker shutting down');
    this.offlineGrace.dispose();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
