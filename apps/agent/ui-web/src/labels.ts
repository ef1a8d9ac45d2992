import type { PeerStatus, StatusResponse } from '@trellis/proto';

/** Words for the page (no DOM here: unit-tested under Node). */
export const STATE_LABELS: Record<StatusResponse['state'], string> = {
  stopped: 'Disconnected',
  'needs-enrollment': 'Not signed in',
  'signing-in': 'Signing in',
  enrolling: 'Enrolling',
  connecting: 'Connecting',
  connected: 'Connected',
  offline: 'Offline',
};

/** How the device reaches a peer, in words: direct (LAN or internet), relayed, or not yet. */
export function pathLabel(p: PeerStatus): string {
  const at = p.endpoint ? ` ${p.endpoint}` : '';
  if (p.path === 'direct-lan') return `direct (LAN)${at}`;
  if (p.path === 'direct-internet') return `direct${at}`;
  if (p.path === 'relay') return `relayed via ${p.relayName ?? 'a relay'}`;
  if (p.path === 'none') return 'connecting';
  return p.endpoint ? `via ${p.endpoint}` : 'no path yet';
}
