import { readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  type ErrorResponse,
  LOCAL_UI_PATHS,
  LocalUiDownRequest,
  LocalUiSessionRequest,
  type LocalUiSessionResponse,
  LocalUiUpRequest,
  OkResponse,
  type StatusResponse,
  type UpRequest,
  type UpResponse,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { UserError } from '../util/user-error';
import { type Refusal, UiGuard } from './ui-guard';
import { newSecret, type Operator, writeTokenFile } from './ui-token';

/** The daemon operations the UI maps onto (the agent's, as the IPC socket uses them). */
export interface LocalUiAgent {
  status(): Promise<StatusResponse>;
  up(req: UpRequest): Promise<Omit<UpResponse, 'ok'>>;
  down(): Promise<string>;
}

export interface LocalUiOptions {
  /** A loopback address (127.0.0.1, ::1); port 0 picks one (tests). */
  host: string;
  port: number;
  /** The built UI: index.html, app.js, style.css (apps/agent/dist/ui-web). */
  webDir: string;
  tokenFile: string;
  operator: Operator | null;
  agent: LocalUiAgent;
  logger: Logger;
}

const MAX_BODY_BYTES = 16 * 1024;
const WEB_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

/**
 * The tray's local web UI: static files and a JSON API on loopback, for the local operator only.
 * A new token is made and written to `tokenFile` on every start; the token buys a session cookie.
 */
export class LocalUiServer {
  private server: Server | null = null;
  private guard: UiGuard | null = null;
  private files = new Map<string, Buffer>();
  url = '';

  constructor(private readonly opts: LocalUiOptions) {}

  async listen(): Promise<void> {
    const { host, webDir, logger } = this.opts;
    for (const { file } of Object.values(WEB_FILES)) {
      const body = await readFile(join(webDir, file)).catch(() => null);
      if (body) this.files.set(file, body);
    }
    if (this.files.size < Object.keys(WEB_FILES).length)
      logger.warn({ webDir }, 'the local UI is not built (pnpm build): only its API is served');
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, host, () => resolve());
    });
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    const h = host.includes(':') ? `[${host}]` : host;
    const hosts = new Set([`${h}:${port}`, `localhost:${port}`]);
    this.url = `http://${h}:${port}/`;
    const token = newSecret();
    this.guard = new UiGuard(token, hosts, port);
    try {
      await writeTokenFile(this.opts.tokenFile, { url: this.url, token }, this.opts.operator);
    } catch (err) {
      await this.close(); // no UI nobody can open
      throw err;
    }
    logger.info(
      { url: this.url, tokenFile: this.opts.tokenFile, operator: this.opts.operator?.name ?? null },
      'serving the local UI',
    );
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await rm(this.opts.tokenFile, { force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const guard = this.guard;
    const path = (req.url ?? '/').split('?')[0]!;
    // Between listening and knowing its port there is no token yet.
    if (!guard) return this.json(res, 503, { ok: false, error: 'starting' });
    const refused = guard.checkRequest(req);
    if (refused) return this.json(res, refused.status, { ok: false, error: refused.error });
    try {
      if (!path.startsWith('/api/')) return this.serveFile(req, res, path);
      if (path === LOCAL_UI_PATHS.session) return await this.session(req, res, guard);
      const denied: Refusal = guard.checkSession(req);
      if (denied) return this.json(res, denied.status, { ok: false, error: denied.error });
      const agent = this.opts.agent;
      if (path === LOCAL_UI_PATHS.status && req.method === 'GET') {
        return this.json(res, 200, await agent.status());
      }
      if (path === LOCAL_UI_PATHS.up && req.method === 'POST') {
        const body = await readJson(req, LocalUiUpRequest);
        const up: UpRequest = { op: 'up' };
        if (body.broker) up.brokers = [body.broker];
        if (body.fingerprint) up.trust = { fingerprint: body.fingerprint };
        if (body.name) up.name = body.name;
        const answer: UpResponse = { ok: true, ...(await agent.up(up)) };
        return this.json(res, 200, answer);
      }
      if (path === LOCAL_UI_PATHS.down && req.method === 'POST') {
        await readJson(req, LocalUiDownRequest);
        const answer: z.infer<typeof OkResponse> = { ok: true, message: await agent.down() };
        return this.json(res, 200, answer);
      }
      return this.json(res, 404, { ok: false, error: 'no such API' });
    } catch (err) {
      const status = err instanceof HttpError ? err.status : err instanceof UserError ? 400 : 500;
      if (status === 500)
        this.opts.logger.warn({ path, err: (err as Error).message }, 'local UI request failed');
      return this.json(res, status, { ok: false, error: (err as Error).message });
    }
  }

  private async session(req: IncomingMessage, res: ServerResponse, guard: UiGuard): Promise<void> {
    if (req.method !== 'POST') return this.json(res, 405, { ok: false, error: 'POST the token' });
    const { token } = await readJson(req, LocalUiSessionRequest);
    const session = guard.openSession(token);
    if (!session) {
      this.opts.logger.warn({ remote: req.socket.remoteAddress }, 'local UI: a wrong token was offered');
      return this.json(res, 401, { ok: false, error: 'wrong token (it changes whenever trellisd restarts)' });
    }
    res.setHeader('set-cookie', guard.sessionCookie(session.id));
    const answer: LocalUiSessionResponse = { ok: true, csrf: session.csrf };
    return this.json(res, 200, answer);
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, path: string): void {
    const entry = WEB_FILES[path];
    const body = entry && this.files.get(entry.file);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.json(res, 405, { ok: false, error: 'GET only' });
    } else if (path === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS); // browsers ask; the page has none
      res.end();
    } else if (!entry || !body) {
      this.json(res, 404, { ok: false, error: 'not found' });
    } else {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': entry.type, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  }

  private json(res: ServerResponse, status: number, body: object | ErrorResponse): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A JSON body (application/json only: a form post from another site cannot be one) by its schema. */
async function readJson<T extends z.ZodType>(req: IncomingMessage, schema: T): Promise<z.infer<T>> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
    throw new HttpError(415, 'the body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body longer than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new HttpError(400, `bad request: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}
