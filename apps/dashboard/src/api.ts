import { API_PATHS, ErrorBody, WebSession } from '@trellis/proto';
import type { ZodType } from 'zod';

/** An answer other than 2xx, with the broker's message (and `code`, where it gives one). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;

/**
 * One call to the broker's API with the session cookie, and the session's CSRF token on anything
 * that changes something. The answer is parsed by its proto schema (204: nothing to parse).
 */
export async function api<T>(
  method: string,
  path: string,
  schema: ZodType<T> | null,
  body?: unknown,
  retry = true,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-trellis-csrf'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json: unknown = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  const err = ErrorBody.safeParse(json);
  // Signed in again in another tab: this page's CSRF token is the old session's. Once: read anew, retry.
  if (res.status === 403 && err.success && err.data.code === 'csrf' && retry) {
    const current = await api('GET', API_PATHS.session, WebSession);
    csrfToken = current.csrfToken;
    return api(method, path, schema, body, false);
  }
  if (!res.ok) {
    throw new ApiError(
      res.status,
      err.success ? err.data.message : `${res.status} ${res.statusText}`,
      err.success ? err.data.code : undefined,
    );
  }
  return schema ? schema.parse(json) : (undefined as T);
}

/** Remembers the session's CSRF token for the calls that follow. */
export function rememberSession(session: WebSession | null): void {
  csrfToken = session?.csrfToken ?? null;
}

export { WebSession };
