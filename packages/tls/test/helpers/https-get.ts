import type { IncomingMessage } from 'node:http';
import { type RequestOptions, request } from 'node:https';

/** One HTTPS GET; resolves with the body. `url` null: everything is in `options`. */
export function httpsGet(url: string | null, options: RequestOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    };
    const req = url === null ? request(options, onResponse) : request(url, options, onResponse);
    req.on('error', reject);
    req.end();
  });
}
