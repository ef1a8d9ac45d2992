import type { PeerStatus, SignInPrompt, StatusResponse } from '@trellis/proto';
import { pathLabel, STATE_LABELS } from './labels';

/** The page's elements by id (index.html has them all). */
export function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

export function showError(message: string | null): void {
  const e = el('error');
  e.textContent = message ?? '';
  e.hidden = message === null;
}

export function showSignIn(prompt: SignInPrompt | undefined): void {
  el('sign-in-code').hidden = !prompt;
  el('sign-in-form').hidden = !!prompt;
  if (!prompt) return;
  el('user-code').textContent = prompt.userCode;
  el<HTMLAnchorElement>('verify-link').href = prompt.verificationUriComplete;
  el('code-expires').textContent = new Date(prompt.expiresAt).toLocaleTimeString();
}

/** Everything the status says; text only through textContent (names come from the network). */
export function render(s: StatusResponse): void {
  const badge = el('state');
  badge.textContent = STATE_LABELS[s.state];
  badge.className = `badge ${s.state}`;
  const enrolled = s.state !== 'needs-enrollment' && s.state !== 'signing-in';
  el('sign-in').hidden = enrolled;
  if (!enrolled) showSignIn(s.signIn);
  el('self').hidden = !s.self;
  if (s.self) {
    el('self-name').textContent = `${s.self.name} (${s.self.dnsName})`;
    el('self-address').textContent = s.self.address;
  }
  el('self-broker').textContent = s.broker.url
    ? `${s.broker.url} — ${s.broker.connected ? 'connected' : (s.broker.lastError ?? 'not connected')}`
    : '—';
  el('actions').hidden = !enrolled;
  el('connect').hidden = s.state !== 'stopped';
  el('disconnect').hidden = s.state === 'stopped';
  el('peers').hidden = !enrolled;
  el('no-peers').hidden = s.peers.length > 0;
  el('peer-rows').replaceChildren(...s.peers.map(peerRow));
}

function peerRow(p: PeerStatus): HTMLTableRowElement {
  const row = document.createElement('tr');
  row.dataset.peer = p.name;
  const online = p.online ? 'online' : 'offline';
  for (const [text, cls] of [
    [p.name, ''],
    [p.address, ''],
    [p.refused ? 'refused (key changed)' : online, p.online ? 'online' : 'offline-peer'],
    [pathLabel(p), 'path'],
  ] as const) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  }
  return row;
}
