import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, MAX_CONTROL_FRAME_BYTES } from '@trellis/proto';
import { WebSocketServer } from 'ws';
import { RelayControlConnection, type RelayControlDeps } from './relay-control-connection';

/**
 * The relay control channel (API_PATHS.relayControl) on the broker's HTTPS server. One sweep per
 * heartbeat interval closes relays silent for three intervals and those whose token was revoked
 * elsewhere (another instance, or the admin CLI working directly on the database).
 */
export class RelayControlServer {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<RelayControlConnection>();
  private readonly sweep: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private sweeping = false;

  constructor(private readonly deps: RelayControlDeps) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CONTROL_FRAME_BYTES });
    this.wss.on('connection', (ws, req) => {
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const conn = new RelayControlConnection(ws, deps, remote);
      this.connections.add(conn);
      ws.on('close', (code) => {
        this.connections.delete(conn);
        if (code === 1009) {
          deps.metrics.error('relay_frame_too_large');
          deps.logger.warn({ remote, code }, 'relay control frame larger than the limit');
        }
      });
    });
    this.wss.on('error', (err) => deps.logger.error({ err: err.message }, 'relay control server error'));
    this.unsubscribe = deps.tokens.onRevoked((tokenId) => this.revoke([tokenId]));
    this.sweep = setInterval(() => void this.runSweep(), deps.heartbeatIntervalMs);
    this.sweep.unref();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  get size(): number {
    return this.connections.size;
  }

  private revoke(tokenIds: string[]): void {
    for (const conn of this.connections) {
      if (conn.tokenId !== undefined && tokenIds.includes(conn.tokenId)) conn.revoke();
    }
  }

  private async runSweep(): Promise<void> {
    const cutoff = Date.now() - 3 * this.deps.heartbeatIntervalMs;
    for (const conn of this.connections) {
      if (conn.lastActivity >= cutoff) continue;
      this.deps.metrics.error('relay_heartbeat_timeout');
      this.deps.logger.warn({ tokenId: conn.tokenId }, 'relay control connection silent too long');
      conn.close(CloseCode.heartbeatTimeout, 'heartbeat timeout');
    }
    if (this.sweeping) return; // the previous database check has not answered yet
    this.sweeping = true;
    try {
      const ids = [...this.connections].flatMap((c) => (c.tokenId === undefined ? [] : [c.tokenId]));
      this.revoke(await this.deps.tokens.revokedAmong(ids));
    } catch (err) {
      this.deps.logger.warn({ err: String(err) }, 'relay token revocation check failed');
    } finally {
      this.sweeping = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.unsubscribe();
    const open = [...this.connections];
    for (const conn of open) conn.close(1001, 'broker shutting down');
    await Promise.all(open.map((c) => c.drained()));
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
