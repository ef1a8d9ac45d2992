import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Answer {
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface Cookie {
  value: string;
  path: string;
}

/**
 * A browser in code for redirect flows across two servers: one cookie jar per origin (names,
 * values, paths; Max-Age=0 deletes), redirects followed by hand so every hop can be checked.
 * HTTPS trusts exactly `ca` (the broker's certificate).
 */
export class CookieBrowser {
  private readonly jars = new Map<string, Map<string, Cookie>>();

  constructor(private readonly ca: Buffer) {}

  cookie(origin: string, name: string): string | undefined {
    return this.jars.get(new URL(origin).origin)?.get(name)?.value;
  }

  setCookie(origin: string, name: string, value: string): void {
    this.jar(origin).set(name, { value, path: '/' });
  }

  /** One request; cookies sent and stored, no redirect followed. */
  send(method: string, url: string, form?: Record<string, string>): Promise<Answer> {
    const target = new URL(url);
    const jar = this.jar(url);
    const cookies = [...jar]
      .filter(([, c]) => target.pathname.startsWith(c.path))
      .map(([n, c]) => `${n}=${c.value}`);
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers: Record<string, string> = {};
    if (cookies.length) headers.cookie = cookies.join('; ');
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(target, { method, headers, ca: this.ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) this.store(jar, line);
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ url, status: res.statusCode ?? 0, headers: res.headers, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** Follows redirects from `url` (GETs after the first), returning every answer in order. */
  async follow(method: string, url: string, form?: Record<string, string>, max = 20): Promise<Answer[]> {
    const answers = [await this.send(method, url, form)];
    while (answers.length < max) {
      const last = answers.at(-1)!;
      if (last.status < 300 || last.status >= 400 || !last.headers.location) break;
      answers.push(await this.send('GET', new URL(last.headers.location, last.url).toString()));
    }
    return answers;
  }

  private jar(url: string): Map<string, Cookie> {
    const origin = new URL(url).origin;
    let jar = this.jars.get(origin);
    if (!jar) {
      jar = new Map();
      this.jars.set(origin, jar);
    }
    return jar;
  }

  private store(jar: Map<string, Cookie>, line: string): void {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq);
    const value = pair!.slice(eq + 1);
    const attr = (n: string) =>
      attributes.find((a) => a.toLowerCase().startsWith(`${n}=`))?.slice(n.length + 1);
    const expires = attr('expires');
    if (attr('max-age') === '0' || (expires && Date.parse(expires) <= Date.now()) || value === '') {
      jar.delete(name);
      return;
    }
    jar.set(name, { value, path: attr('path') ?? '/' });
  }
}
