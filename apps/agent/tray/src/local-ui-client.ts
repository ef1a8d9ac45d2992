import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import {
  ErrorResponse,
  LOCAL_UI_CSRF_HEADER,
  LOCAL_UI_PATHS,
  LocalUiSessionResponse,
  LocalUiTokenFile,
  type LocalUiUpRequest,
  OkResponse,
  StatusResponse,
  UpResponse,
} from '@trellis/proto';
import type { z } from 'zod';

/** An answer that is not a success: the daemon's error text and the HTTP status. */
export class LocalUiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The tray's side of the local UI API (Node, outside any page): the token file read afresh for
 * each session, since trellisd makes a new token on every start; a refused session is opened again
 * once with the file's current token.
 */
export class LocalUiClient {
  private session: { info: LocalUiTokenFile; cookie: string; csrf: string } | null = null;

  constructor(private readonly tokenFile: string) {}

  /** The page to load in the tray's window: the token in the fragment, which no request carries. */
  async pageUrl(): Promise<string> {
    const info = await this.readTokenFile();
    return `${info.url}#token=${info.token}`;
  }

  status(): Promise<StatusResponse> {
    return this.call(StatusResponse, LOCAL_UI_PATHS.status);
  }

  up(req: LocalUiUpRequest): Promise<UpResponse> {
    return this.call(UpResponse, LOCAL_UI_PATHS.up, req);
  }

  down(): Promise<z.infer<typeof OkResponse>> {
    return this.call(OkResponse, LOCAL_UI_PATHS.down, {});
  }

  private async call<T extends z.ZodType>(schema: T, path: string, body?: object): Promise<z.infer<T>> {
    for (let attempt = 0; ; attempt += 1) {
      const s = this.session ?? (await this.open());
      const headers = { cookie: s.cookie, [LOCAL_UI_CSRF_HEADER]: s.csrf };
      const res = await send(s.info.url, path, headers, body);
      if (res.status === 401 && attempt === 0) {
        this.session = null;
        continue;
      }
      return schema.parse(answer(res));
    }
  }

  private async open(): Promise<NonNullable<LocalUiClient['session']>> {
    const info = await this.readTokenFile();
    const res = await send(info.url, LOCAL_UI_PATHS.session, {}, { token: info.token });
    const { csrf } = LocalUiSessionResponse.parse(answer(res));
    const cookie = (res.setCookie[0] ?? '').split(';')[0] ?? '';
    this.session = { info, cookie, csrf };
    return this.session;
  }

  private async readTokenFile(): Promise<LocalUiTokenFile> {
    let text: string;
    try {
      text = await readFile(this.tokenFile, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'EACCES' ? 'not readable by this user' : 'missing';
      throw new Error(
        `${this.tokenFile} is ${why}: is trellisd running with --ui-listen and --operator you?`,
      );
    }
    return LocalUiTokenFile.parse(JSON.parse(text));
  }
}

interface RawAnswer {
  status: number;
  json: unknown;
  setCookie: string[];
}

function answer(res: RawAnswer): unknown {
  if (res.status >= 200 && res.status < 300) return res.json;
  const err = ErrorResponse.safeParse(res.json);
  throw new LocalUiError(res.status, err.success ? err.data.error : `HTTP ${res.status}`);
}

/** One request as the page would send it: same-origin Origin on POST, JSON both ways. */
function send(
  base: string,
  path: string,
  headers: Record<string, string>,
  body?: object,
): Promise<RawAnswer> {
  const url = new URL(path, base);
  const text = body ? JSON.stringify(body) : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body ? 'POST' : 'GET',
        headers: {
          ...headers,
          ...(text ? { origin: url.origin, 'content-type': 'application/json' } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            // not JSON: `answer` reports the status
          }
          resolve({ status: res.statusCode ?? 0, json, setCookie: res.headers['set-cookie'] ?? [] });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url.href}: no answer`)));
    req.on('error', reject);
    req.end(text);
  });
}
