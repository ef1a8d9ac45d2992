import type { PeerStatus } from '@trellis/proto';
import { iconBitmap } from '../tray/src/icon';
import { trayView } from '../tray/src/menu-model';
import { pathLabel } from '../ui-web/src/labels';
import { statusFixture } from './helpers/status-fixture';

const self = {
  id: 'd1',
  name: 'laptop',
  dnsName: 'laptop.acme.trellis.test',
  address: '100.64.0.1',
} as unknown as NonNullable<ReturnType<typeof statusFixture>['self']>;

function peer(extra: Partial<PeerStatus>): PeerStatus {
  return {
    id: 'p',
    name: 'server',
    dnsName: 'server.acme.trellis.test',
    address: '100.64.0.2',
    publicKey: `${'A'.repeat(43)}=`,
    online: true,
    endpoint: null,
    candidates: [],
    lastHandshake: null,
    rxBytes: 0,
    txBytes: 0,
    ...extra,
  };
}

const labels = (v: ReturnType<typeof trayView>) =>
  v.menu.map((e) =>
    e.kind === 'separator' ? '---' : `${e.kind === 'item' ? `[${e.action}] ` : ''}${e.label}`,
  );

describe('the tray menu from the daemon status (pure; Electron only draws it)', () => {
  it('connected: who and how many peers are online, and Disconnect', () => {
    const v = trayView(statusFixture({ self, peers: [peer({}), peer({ id: 'q', online: false })] }));
    expect(v.tone).toBe('connected');
    expect(labels(v)).toEqual([
      'Connected as laptop (100.64.0.1): 1 of 2 peers online',
      '[disconnect] Disconnect',
      '---',
      '[open-window] Open Trellis…',
      '[quit] Quit',
    ]);
    expect(v.tooltip).toBe('Trellis: Connected as laptop (100.64.0.1): 1 of 2 peers online');
  });

  it('stopped: Connect; not enrolled: Sign in…', () => {
    expect(labels(trayView(statusFixture({ state: 'stopped', self })))).toContain('[connect] Connect');
    const out = trayView(statusFixture({ state: 'needs-enrollment' }));
    expect(out.tone).toBe('off');
    expect(labels(out).slice(0, 2)).toEqual(['Not signed in', '[sign-in] Sign in…']);
  });

  it('signing in: the code, and the verification page with the code filled in', () => {
    const signIn = {
      broker: 'https://b:8443/',
      verificationUri: 'https://b:8443/device',
      verificationUriComplete: 'https://b:8443/device#code=BCDF-GHJK',
      userCode: 'BCDF-GHJK',
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    };
    const v = trayView(statusFixture({ state: 'signing-in', signIn }));
    expect(v.tone).toBe('busy');
    expect(v.menu[0]).toEqual({ kind: 'status', label: 'Signing in: approve code BCDF-GHJK' });
    expect(v.menu[1]).toEqual({
      kind: 'item',
      label: 'Open the sign-in page…',
      action: 'open-url',
      url: 'https://b:8443/device#code=BCDF-GHJK',
    });
    expect(v.menu[2]).toEqual({ kind: 'item', label: 'Cancel sign-in', action: 'disconnect' });
  });

  it('offline and connecting keep Disconnect; an unreachable daemon shows why', () => {
    const off = trayView(
      statusFixture({ state: 'offline', broker: { url: 'u', connected: false, lastError: 'ECONNREFUSED' } }),
    );
    expect(off.tone).toBe('error');
    expect(labels(off).slice(0, 2)).toEqual(['Broker unreachable: ECONNREFUSED', '[disconnect] Disconnect']);
    expect(labels(trayView(statusFixture({ state: 'connecting', self }))).slice(0, 2)).toEqual([
      'Connecting as laptop (100.64.0.1)…',
      '[disconnect] Disconnect',
    ]);
    const down = trayView(null, '/run/trellis/ui-token is missing');
    expect(down.tone).toBe('error');
    expect(labels(down)).toEqual([
      'Trellis: /run/trellis/ui-token is missing',
      '---',
      '[open-window] Open Trellis…',
      '[quit] Quit',
    ]);
  });

  it("draws the icon in code: a disc of the state's colour on transparent corners", () => {
    const px = iconBitmap('connected', 16);
    expect(px.length).toBe(16 * 16 * 4);
    const at = (x: number, y: number) => [...px.subarray((y * 16 + x) * 4, (y * 16 + x) * 4 + 4)];
    expect(at(0, 0)[3]).toBe(0);
    expect(at(8, 8)).toEqual([70, 143, 47, 255]); // BGRA
    expect(at(8, 8)).not.toEqual([
      ...iconBitmap('error', 16).subarray((8 * 16 + 8) * 4, (8 * 16 + 8) * 4 + 4),
    ]);
  });
});

describe("the local UI's words for a path", () => {
  it('direct on the LAN or the internet, relayed via which relay, or still connecting', () => {
    expect(pathLabel(peer({ path: 'direct-lan', endpoint: '192.168.1.5:51820' }))).toBe(
      'direct (LAN) 192.168.1.5:51820',
    );
    expect(pathLabel(peer({ path: 'direct-internet', endpoint: '203.0.113.7:41000' }))).toBe(
      'direct 203.0.113.7:41000',
    );
    expect(pathLabel(peer({ path: 'relay', relayName: 'fra-1', endpoint: '198.51.100.1:40001' }))).toBe(
      'relayed via fra-1',
    );
    expect(pathLabel(peer({ path: 'none' }))).toBe('connecting');
    expect(pathLabel(peer({}))).toBe('no path yet');
  });
});
