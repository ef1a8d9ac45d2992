import type { LocalUiUpRequest } from '@trellis/proto';
import * as api from './api';
import { el, render, showError, showSignIn } from './view';

const POLL_MS = 1500;

/** Runs a user's action: errors shown, buttons disabled meanwhile, the status refreshed after. */
async function act(what: () => Promise<unknown>): Promise<void> {
  const buttons = [...document.querySelectorAll('button')];
  for (const b of buttons) b.disabled = true;
  try {
    await what();
    showError(null);
  } catch (err) {
    showError((err as Error).message);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
  await refresh();
}

async function refresh(): Promise<void> {
  try {
    render(await api.status());
    el('no-session').hidden = true;
  } catch (err) {
    if (err instanceof api.NoSession) {
      el('no-session').hidden = false;
      return;
    }
    showError((err as Error).message);
  }
}

function signInRequest(form: HTMLFormElement): LocalUiUpRequest {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? '').trim();
  const req: LocalUiUpRequest = { broker: text('broker') };
  if (text('name')) req.name = text('name');
  if (text('fingerprint')) req.fingerprint = text('fingerprint');
  return req;
}

async function start(): Promise<void> {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  // Out of the address bar and the history at once.
  if (location.hash) history.replaceState(null, '', location.pathname);
  if (token) {
    try {
      await api.openSession(token);
    } catch (err) {
      showError((err as Error).message);
    }
  }
  if (!api.hasSession()) {
    el('no-session').hidden = false;
    return;
  }
  el('connect').addEventListener('click', () => void act(() => api.up({})));
  el('disconnect').addEventListener('click', () => void act(() => api.down()));
  // `down` ends a pending sign-in too: the form comes back for another broker.
  el('cancel-sign-in').addEventListener('click', () => void act(() => api.down()));
  el<HTMLFormElement>('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const req = signInRequest(ev.target as HTMLFormElement);
    void act(async () => showSignIn((await api.up(req)).signIn));
  });
  await refresh();
  setInterval(() => void refresh(), POLL_MS);
}

void start();
