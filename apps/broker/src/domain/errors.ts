/** An error meant for the caller: HTTP status, short kind (also the metrics label) and a clear message. */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
    /** `debug` for answers a client expects often (a device flow's `authorization_pending`). */
    readonly logLevel: 'warn' | 'debug' = 'warn',
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const badRequest = (message: string) => new DomainError(400, 'bad_request', message);
export const unauthorized = (message: string) => new DomainError(401, 'unauthorized', message);
export const forbidden = (message: string) => new DomainError(403, 'forbidden', message);
export const notFound = (message: string) => new DomainError(404, 'not_found', message);
export const conflict = (message: string) => new DomainError(409, 'conflict', message);
/** 429: too many of `what` (logins, codes, requests); says when to try again. */
export const rateLimited = (waitMs: number, what: string) =>
  new DomainError(429, 'rate_limited', `too many ${what}: try again in ${Math.ceil(waitMs / 1000)} s`);
