import { existsSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type ErrorResponse, IpcRequest, MAX_IPC_LINE_BYTES } from '@trellis/proto';
import type { Logger } from 'pino';

export type IpcHandler = (req: IpcRequest) => Promise<object>;

/**
 * Lines a connection exchanges before its requests are served: Windows' named pipe, which Node
 * cannot give an ACL, authenticates its clients this way (pipe-auth-windows.ts).
 */
export interface ConnectionGate {
  open(): GateSession;
}
export interface GateSession {
  /** One line from the client: what to answer, and whether requests may follow (`pass`). */
  take(line: string): { reply?: object; next: 'wait' | 'pass' | 'refuse' };
}

/** `\\.\pipe\NAME`: a Windows named pipe, not a file (no stale socket, no mode). */
export function isNamedPipe(path: string): boolean {
  return /^\\\\[.?]\\pipe\\/i.test(path);
}

/**
 * The daemon's local control socket: JSON lines, mode 0600 so only root (the owner) may use it.
 * The socket is created under a restrictive umask so it is never reachable with wider permissions.
 */
export class IpcServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handler: IpcHandler,
    private readonly logger: Logger,
    private readonly gate: ConnectionGate | null = null,
  ) {}

  async listen(): Promise<void> {
    if (isNamedPipe(this.path)) return this.listenOnPipe();
    await this.removeStale();
    const server = createServer((sock) => this.serve(sock));
    this.server = server;
    // bind() happens synchronously inside listen(), so the restrictive umask covers exactly the
    // socket's creation and nothing else the process does concurrently.
    const listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const oldMask = process.umask(0o177);
    try {
      server.listen(this.path);
    } finally {
      process.umask(oldMask);
    }
    await listening;
    await chmod(this.path, 0o600);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (!isNamedPipe(this.path)) await rm(this.path, { force: true });
  }

  /**
   * Open to every local user (Node can set no other pipe ACL; the default one keeps the signed-in
   * user from writing): the gate is the access check. A second daemon fails with EADDRINUSE.
   */
  private async listenOnPipe(): Promise<void> {
    if (!this.gate) throw new Error(`refusing to listen on ${this.path} without an authenticating gate`);
    const server = createServer((sock) => this.serve(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: this.path, readableAll: true, writableAll: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** A socket left by a crashed daemon is removed; one that answers means another daemon runs. */
  private async removeStale(): Promise<void> {
    if (!existsSync(this.path)) return;
    const alive = await new Promise<boolean>((resolve) => {
      const s = connect(this.path);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (alive) throw new Error(`another trellisd is already listening on ${this.path}`);
    this.logger.warn({ socket: this.path }, 'removing stale control socket');
    await rm(this.path, { force: true });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setEncoding('utf8');
    let buf = '';
    let chain = Promise.resolve();
    let gate = this.gate?.open() ?? null;
    let refused = false;
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_IPC_LINE_BYTES && !buf.includes('\n')) {
        this.reply(sock, { ok: false, error: `request longer than ${MAX_IPC_LINE_BYTES} bytes` });
        sock.end();
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        chain = chain.then(() => {
          if (refused) return;
          if (!gate) return this.handleLine(sock, line);
          const r = gate.take(line);
          if (r.reply) this.reply(sock, r.reply);
          if (r.next === 'pass') gate = null;
          if (r.next === 'refuse') {
            refused = true;
            sock.end();
          }
        });
      }
    });
  }

  private async handleLine(sock: Socket, line: string): Promise<void> {
    const req = parseIpcLine(line);
    if (!req.ok) {
      this.reply(sock, { ok: false, error: req.error });
      return;
    }
    try {
      this.reply(sock, await this.handler(req.request));
    } catch (err) {
      this.logger.warn({ op: req.request.op, err: (err as Error).message }, 'control request failed');
      this.reply(sock, { ok: false, error: (err as Error).message });
    }
  }

  private reply(sock: Socket, body: object | ErrorResponse): void {
    if (!sock.destroyed) sock.write(`${JSON.stringify(body)}\n`);
  }
}

/** One request line of the agent's control socket, parsed by its schema (never throws). */
export function parseIpcLine(line: string): { ok: true; request: IpcRequest } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, error: 'request is not JSON' };
  }
  const req = IpcRequest.safeParse(json);
  if (req.success) return { ok: true, request: req.data };
  return { ok: false, error: `bad request: ${req.error.issues.map((i) => i.message).join('; ')}` };
}
