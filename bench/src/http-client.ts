import { Agent, request } from 'node:https';

/** Minimal JSON-over-HTTPS client that trusts exactly the broker's certificate. */
export class BrokerHttpClient {
  private readonly agent: Agent;
  constructor(
    private readonly baseUrl: string,
    certPem: string,
    private token?: string,
  ) {
    this.agent = new Agent({ ca: certPem, keepAlive: true, maxSockets: 64 });
  }

  setToken(token: string): void {
    this.token = token;
  }

  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.baseUrl}${path}`,
        {
          method,
          agent: this.agent,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300)
              reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
            else resolve((text ? JSON.parse(text) : undefined) as T);
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
