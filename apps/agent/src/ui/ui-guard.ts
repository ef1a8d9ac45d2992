import type { IncomingMessage } from 'node:http';
import { LOCAL_UI_CSRF_HEADER } from '@trellis/proto';
import { newSecret, sameSecret } from './ui-token';

/** Why a request is refused, with the HTTP status to answer; null: it may go on. */
export type Refusal = { status: number; error: string } | null;

const MAX_SESSIONS = 16;

/**
 * Who may talk to the local UI. DNS rebinding: the Host header must name the loopback address and
 * port we listen on. Cross-site requests: state changes need a same-origin Origin header, and every
 * API call the session cookie (HttpOnly, SameSite=Strict) and its CSRF token in a header, which a
 * page of another origin can neither read nor send without a preflight we never grant.
 */
export class UiGuard {
  /** Session id → its CSRF token. In memory only: a restart ends every session. */
  private readonly sessions = new Map<string, string>();
  readonly cookieName: string;

  constructor(
    private readonly token: string,
    private readonly hosts: ReadonlySet<string>,
    port: number,
  ) {
    this.cookieName = `trellis_ui_${port}`;
  }

  /** Every request: the Host header, and the Origin header when one is sent (always for POST). */
  checkRequest(req: IncomingMessage): Refusal {
    const host = req.headers.host ?? '';
    if (!this.hosts.has(host)) return { status: 421, error: 'wrong Host: use the address trellisd gave' };
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`)
      return { status: 403, error: 'cross-origin request refused' };
    if (req.method === 'POST' && origin === undefined)
      return { status: 403, error: 'a state-changing request needs an Origin header' };
    return null;
  }

  /** The UI token for a new session: its cookie value and CSRF token; null when the token is wrong. */
  openSession(token: string): { id: string; csrf: string } | null {
    if (!sameSecret(token, this.token)) return null;
    const id = newSecret();
    const csrf = newSecret();
    this.sessions.set(id, csrf);
    // Oldest first: a map iterates in insertion order.
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return { id, csrf };
  }

  /** An API call: the session cookie and the session's CSRF token in its header. */
  checkSession(req: IncomingMessage): Refusal {
    const id = readCookie(req.headers.cookie, this.cookieName);
    let csrf: string | undefined;
    for (const [sid, c] of this.sessions) if (id !== undefined && sameSecret(sid, id)) csrf = c;
    if (csrf === undefined)
      return { status: 401, error: 'no session: open the UI from the tray or `trellis ui`' };
    const sent = req.headers[LOCAL_UI_CSRF_HEADER];
    if (typeof sent !== 'string' || !sameSecret(sent, csrf))
      return { status: 403, error: `missing or wrong ${LOCAL_UI_CSRF_HEADER} header` };
    return null;
  }

  sessionCookie(id: string): string {
    return `${this.cookieName}=${id}; Path=/; HttpOnly; SameSite=Strict`;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
