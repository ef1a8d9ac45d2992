import {
  ErrorResponse,
  LOCAL_UI_CSRF_HEADER,
  LOCAL_UI_PATHS,
  LocalUiSessionResponse,
  type LocalUiUpRequest,
  OkResponse,
  StatusResponse,
  UpResponse,
} from '@trellis/proto';
import type { z } from 'zod';

/** Kept per tab so a reload keeps working; the session cookie itself is HttpOnly. */
const CSRF_KEY = 'trellis-ui-csrf';

export class NoSession extends Error {}

async function send<T extends z.ZodType>(schema: T, path: string, body?: object): Promise<z.infer<T>> {
  const csrf = sessionStorage.getItem(CSRF_KEY);
  const headers: Record<string, string> = csrf ? { [LOCAL_UI_CSRF_HEADER]: csrf } : {};
  if (body) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: body ? 'POST' : 'GET',
    headers,
    ...(body ? { body: JSON.stringify(body) } : {}),
    credentials: 'same-origin',
  });
  const json: unknown = await res.json().catch(() => null);
  if (res.status === 401) throw new NoSession(ErrorResponse.safeParse(json).data?.error ?? 'no session');
  if (!res.ok) throw new Error(ErrorResponse.safeParse(json).data?.error ?? `HTTP ${res.status}`);
  return schema.parse(json);
}

/** The token from the page's address (its fragment: never sent to a server) for a session. */
export async function openSession(token: string): Promise<void> {
  sessionStorage.removeItem(CSRF_KEY);
  const res = await send(LocalUiSessionResponse, LOCAL_UI_PATHS.session, { token });
  sessionStorage.setItem(CSRF_KEY, res.csrf);
}

export const hasSession = (): boolean => sessionStorage.getItem(CSRF_KEY) !== null;
export const status = () => send(StatusResponse, LOCAL_UI_PATHS.status);
export const up = (req: LocalUiUpRequest) => send(UpResponse, LOCAL_UI_PATHS.up, req);
export const down = () => send(OkResponse, LOCAL_UI_PATHS.down, {});
