import { readFileSync } from 'node:fs';
import { request } from 'node:https';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected field by field
  json: any;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as is (for malformed bodies); overrides body. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

/** HTTPS to the broker, trusting exactly its certificate file (no verification turned off). */
export function httpClient(baseUrl: string, certFile: string) {
  const ca = readFileSync(certFile);
  return (method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult> =>
    new Promise((resolve, reject) => {
      const url = new URL(path, baseUrl);
      const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
      if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const req = request(url, { method, headers, ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
}
