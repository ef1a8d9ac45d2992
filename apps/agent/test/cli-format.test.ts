import type { StatusResponse } from '@trellis/proto';
import { formatAgo, formatBytes, formatStatus } from '../src/cli/format-status';
import { statusFixture } from './helpers/status-fixture';

describe('trellis status formatting', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');

  it('formats handshake ages and byte counts', () => {
    expect(formatAgo(null, now)).toBe('never');
    expect(formatAgo('2026-01-01T11:59:48Z', now)).toBe('12s ago');
    expect(formatAgo('2026-01-01T11:57:00Z', now)).toBe('3m ago');
    expect(formatAgo('2026-01-01T09:00:00Z', now)).toBe('3h ago');
    expect(formatAgo('2025-12-30T12:00:00Z', now)).toBe('2d ago');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12 * 1024 * 1024)).toBe('12.0 MiB');
  });

  it('shows the instance connected to, at which address, and every broker URL', () => {
    const s: StatusResponse = {
      ok: true,
      state: 'connected',
      self: null,
      broker: {
        url: 'https://brokers.example:8443/',
        connected: true,
        lastError: null,
        urls: ['https://brokers.example:8443/', 'https://b2.example:8443/'],
        address: '192.0.2.10',
      },
      interface: { name: 'trellis0', listenPort: 51820, publicKey: null, backend: 'userspace' },
      netmapSerial: null,
      netmapSource: 'none',
      peers: [],
    };
    const text = formatStatus(s, now);
    expect(text).toContain('broker:     https://brokers.example:8443/ (192.0.2.10)  connected\n');
    expect(text).toContain('brokers:    https://brokers.example:8443/, https://b2.example:8443/\n');
    const single = formatStatus({ ...s, broker: { ...s.broker, urls: [s.broker.url!], address: null } }, now);
    expect(single).toContain('broker:     https://brokers.example:8443/  connected\n');
    expect(single).not.toContain('brokers:');
  });

  it('prints self, broker and one aligned row per peer', () => {
    const s: StatusResponse = {
      ok: true,
      state: 'connected',
      self: {
        id: '6f1c2a7e-7d1f-4c36-9a51-1f2f0c3b9d11',
        name: 'alpha',
        dnsName: 'alpha.acme.trellis.test',
        address: '100.64.0.1',
        accountName: 'acme',
        overlayPrefix: '100.64.0.0/10',
      },
      broker: { url: 'https://broker:8443/', connected: true, lastError: null },
      interface: { name: 'trellis0', listenPort: 51820, publicKey: null, backend: 'userspace' },
      netmapSerial: 4,
      netmapSource: 'broker',
      peers: [
        {
          id: 'p1',
          name: 'beta',
          dnsName: 'beta.acme.trellis.test',
          address: '100.64.0.2',
          publicKey: 'YR0XejcPpMkb3Xap9f0woGDjp3DE8DMObGhdvEvSPWg=',
          online: true,
          endpoint: '10.0.0.2:51820',
          candidates: ['10.0.0.2:51820', '192.168.1.2:51820'],
          lastHandshake: '2026-01-01T11:59:48Z',
          rxBytes: 2048,
          txBytes: 100,
          path: 'direct-lan',
          pathSince: '2026-01-01T11:57:00Z',
        },
      ],
    };
    const text = formatStatus(s, now);
    expect(text).toContain('device:     alpha (alpha.acme.trellis.test)');
    expect(text).toContain('broker:     https://broker:8443/  connected');
    expect(text).toContain('netmap:     serial 4 from broker, 1 peers');
    const rows = text.trimEnd().split('\n').slice(-2);
    expect(rows[0]).toMatch(
      /^PEER\s+DNS NAME\s+ADDRESS\s+ENDPOINT\s+CANDIDATES\s+HANDSHAKE\s+RX\s+TX\s+ONLINE\s+PATH$/,
    );
    expect(rows[1]).toMatch(
      /^beta\s+beta\.acme\.trellis\.test\s+100\.64\.0\.2\s+10\.0\.0\.2:51820\s+10\.0\.0\.2:51820,192\.168\.1\.2:51820\s+12s ago\s+2\.0 KiB\s+100 B\s+yes\s+direct LAN since 3m ago$/,
    );
    expect(rows[0]!.indexOf('ADDRESS')).toBe(rows[1]!.indexOf('100.64.0.2'));
    const relayed = {
      ...s.peers[0]!,
      path: 'relay' as const,
      relayName: 'relay-fra',
      endpoint: '192.0.2.99:40001',
    };
    const relayRow = formatStatus({ ...s, peers: [relayed] }, now)
      .trimEnd()
      .split('\n')
      .at(-1);
    expect(relayRow).toMatch(/\s192\.0\.2\.99:40001\s.*\syes\s+relay relay-fra since 3m ago$/);
  });

  it('says where names are answered, and why not when they are not', () => {
    const s = statusFixture();
    const dns = {
      domain: 'acme.trellis.test',
      listen: '100.64.0.1:53',
      resolver: 'resolv-conf' as const,
      upstreams: ['10.0.0.53'],
      lastError: null,
    };
    expect(formatStatus({ ...s, dns })).toContain(
      'dns:        acme.trellis.test answered at 100.64.0.1:53 via resolv.conf, other names to 10.0.0.53',
    );
    expect(formatStatus({ ...s, dns: { ...dns, listen: null, lastError: 'listen EADDRINUSE' } })).toContain(
      'dns:        acme.trellis.test not served: listen EADDRINUSE',
    );
  });
});
