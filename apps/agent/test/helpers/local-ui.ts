import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalUiTokenFile } from '@trellis/proto';
import pino from 'pino';
import type { Agent } from '../../src/agent/agent';
import { LocalUiServer } from '../../src/ui/ui-server';
import type { Operator } from '../../src/ui/ui-token';

/** The UI as `pnpm build` leaves it (apps/agent/dist/ui-web). */
export const UI_WEB_DIST = resolve(__dirname, '../../dist/ui-web');

export interface Answer {
  status: number;
  json: unknown;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request with exactly the headers given (Host included; `host: ''`: none), to test every refusal. */
export function httpCall(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  const { host, ...headers } = opts.headers ?? {};
  const hostHeader =
    host === undefined ? {} : host === '' ? { setHost: false } : { headers: { ...headers, host } };
  return new Promise((done, fail) => {
    const req = request(url, { method: opts.method ?? 'GET', headers, ...hostHeader }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          // a page, not JSON
        }
        done({ status: res.statusCode ?? 0, json, text, headers: res.headers });
      });
    });
    req.on('error', fail);
    req.end(opts.body);
  });
}

/** A UI server on an ephemeral loopback port over `agent`, its token file in a fresh 0755 dir. */
export async function startUi(
  agent: Agent,
  logs: string[],
  opts: { tokenFile?: string; operator?: Operator | null; port?: number } = {},
): Promise<{ ui: LocalUiServer; tokenFile: string; token: () => LocalUiTokenFile }> {
  const tokenFile = opts.tokenFile ?? join(mkdtempSync(join(tmpdir(), 'trl-ui-')), 'run', 'ui-token');
  const ui = new LocalUiServer({
    host: '127.0.0.1',
    port: opts.port ?? 0,
    webDir: UI_WEB_DIST,
    tokenFile,
    operator: opts.operator ?? null,
    agent,
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
  });
  await ui.listen();
  const token = () => LocalUiTokenFile.parse(JSON.parse(readFileSync(tokenFile, 'utf8')));
  return { ui, tokenFile, token };
}
