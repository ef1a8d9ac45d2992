import type { StatusResponse } from '@trellis/proto';

/** What a menu item does; `open-url` opens `url` in the user's browser. */
export type TrayAction = 'open-window' | 'connect' | 'disconnect' | 'sign-in' | 'open-url' | 'quit';

export type TrayMenuEntry =
  | { kind: 'status'; label: string }
  | { kind: 'separator' }
  | { kind: 'item'; label: string; action: TrayAction; url?: string };

/** The icon's colour class: green connected, amber on the way, grey down, red broken. */
export type TrayTone = 'connected' | 'busy' | 'off' | 'error';

export interface TrayView {
  tooltip: string;
  tone: TrayTone;
  menu: TrayMenuEntry[];
}

/**
 * The tray from the daemon's status (null with `error` when the local UI cannot be reached): one
 * status line, the action that fits the state, then "Open Trellis…" and "Quit". Pure: unit-tested,
 * while the Electron main process only draws what it returns.
 */
export function trayView(status: StatusResponse | null, error: string | null = null): TrayView {
  const tail: TrayMenuEntry[] = [
    { kind: 'separator' },
    { kind: 'item', label: 'Open Trellis…', action: 'open-window' },
    { kind: 'item', label: 'Quit', action: 'quit' },
  ];
  if (!status) {
    const line = `Trellis: ${error ?? 'trellisd is not reachable'}`;
    return { tooltip: line, tone: 'error', menu: [{ kind: 'status', label: line }, ...tail] };
  }
  const { line, tone, actions } = describe(status);
  return {
    tooltip: `Trellis: ${line}`,
    tone,
    menu: [{ kind: 'status', label: line }, ...actions, ...tail],
  };
}

function describe(s: StatusResponse): { line: string; tone: TrayTone; actions: TrayMenuEntry[] } {
  const who = s.self ? `${s.self.name} (${s.self.address})` : null;
  const online = s.peers.filter((p) => p.online).length;
  const peers = `${online} of ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'} online`;
  const disconnect: TrayMenuEntry = { kind: 'item', label: 'Disconnect', action: 'disconnect' };
  switch (s.state) {
    case 'needs-enrollment':
      return {
        line: 'Not signed in',
        tone: 'off',
        actions: [{ kind: 'item', label: 'Sign in…', action: 'sign-in' }],
      };
    case 'signing-in': {
      // `down` ends a pending sign-in.
      const cancel: TrayMenuEntry = { kind: 'item', label: 'Cancel sign-in', action: 'disconnect' };
      const p = s.signIn;
      if (!p) return { line: 'Signing in…', tone: 'busy', actions: [cancel] };
      const url = p.verificationUriComplete;
      return {
        line: `Signing in: approve code ${p.userCode}`,
        tone: 'busy',
        actions: [{ kind: 'item', label: 'Open the sign-in page…', action: 'open-url', url }, cancel],
      };
    }
    case 'stopped':
      return {
        line: who ? `Disconnected: ${who}` : 'Disconnected',
        tone: 'off',
        actions: [{ kind: 'item', label: 'Connect', action: 'connect' }],
      };
    case 'connected':
      return { line: `Connected as ${who ?? '?'}: ${peers}`, tone: 'connected', actions: [disconnect] };
    case 'offline': {
      const why = s.broker.lastError ? `: ${s.broker.lastError}` : '';
      return { line: `Broker unreachable${why}`, tone: 'error', actions: [disconnect] };
    }
    case 'enrolling':
    case 'connecting':
      return { line: `Connecting${who ? ` as ${who}` : ''}…`, tone: 'busy', actions: [disconnect] };
  }
}
