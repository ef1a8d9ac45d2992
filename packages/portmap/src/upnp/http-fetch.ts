import { request } from 'node:http';

// Plain HTTP/1.1 to the gateway with a deadline and a body cap; never follows redirects.

export interface HttpResult {
  status: number;
  body: string;
}

export const MAX_HTTP_BODY = 65536;

export function httpRequest(
  url: URL,
  options: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; timeoutMs: number },
): Promise<HttpResult | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: HttpResult | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(value);
    };
    const body = options.body === undefined ? undefined : Buffer.from(options.body, 'utf8');
    const req = request(url, {
      method: options.method,
      headers: {
        ...options.headers,
        Connection: 'close',
        ...(body ? { 'Content-Length': String(body.length) } : {}),
      },
      agent: false,
    });
    const timer = setTimeout(() => finish(undefined), options.timeoutMs);
    req.on('error', () => finish(undefined));
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > MAX_HTTP_BODY) return finish(undefined);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_HTTP_BODY) return finish(undefined);
        chunks.push(chunk);
      });
      res.on('error', () => finish(undefined));
      res.on('end', () =>
        finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.end(body);
  });
}
