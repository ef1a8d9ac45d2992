import type { DeviceInfo } from '@trellis/proto';
import { type LoadedDevices, withDevice, withoutDevice } from '../src/pages/device-pages';

const device = (name: string, extra: Partial<DeviceInfo> = {}): DeviceInfo => ({
  id: `00000000-0000-4000-8000-${name
    .padStart(12, '0')
    .slice(-12)
    .replace(/[^0-9a-f]/g, '0')}`,
  name,
  dnsName: `${name}.acme.test`,
  hostname: name,
  os: 'linux',
  publicKey: `${'A'.repeat(43)}=`,
  address: '100.64.0.1',
  via: null,
  lanAddress: null,
  endpoints: [],
  online: false,
  lastSeen: null,
  createdAt: '2026-12-06T00:00:00.000Z',
  tags: [],
  user: null,
  approved: true,
  ...extra,
});
const names = (l: LoadedDevices) => l.rows.map((d) => d.name);

describe('the fetched device rows as events change them', () => {
  const b = device('b');
  const d = device('d');
  const partial: LoadedDevices = { rows: [b, d], matched: 10, more: true };

  it('a new device that sorts within the fetched pages is put in its place and counted', () => {
    const next = withDevice(partial, device('c'), {});
    expect(names(next)).toEqual(['b', 'c', 'd']);
    expect(next.matched).toBe(11);
  });

  it('a device after the last fetched row belongs to a page not fetched yet: nothing drawn, the count left to the next fetch (an event does not say whether it is new)', () => {
    expect(withDevice(partial, device('x'), {})).toBe(partial);
  });

  it('on the last page, a device sorting after everything is added', () => {
    const all: LoadedDevices = { ...partial, more: false, matched: 2 };
    expect(names(withDevice(all, device('x'), {}))).toEqual(['b', 'd', 'x']);
  });

  it('a change replaces the row (a rename moves it); one that stops matching the filter drops it', () => {
    const renamed = withDevice(partial, { ...b, name: 'c' }, {});
    expect(names(renamed)).toEqual(['c', 'd']);
    expect(renamed.matched).toBe(10);
    const offline: LoadedDevices = { rows: [{ ...b, online: true }], matched: 1, more: false };
    const dropped = withDevice(offline, b, { status: 'online' });
    expect(dropped).toEqual({ rows: [], matched: 0, more: false });
  });

  it('a device that does not match the search is not added', () => {
    expect(withDevice(partial, device('c'), { q: 'web' })).toBe(partial);
    expect(names(withDevice(partial, device('c', { tags: ['tag:web'] }), { q: 'web' }))).toEqual([
      'b',
      'c',
      'd',
    ]);
  });

  it('a removal drops a fetched row and counts it; an unknown id changes nothing', () => {
    expect(withoutDevice(partial, b.id)).toEqual({ rows: [d], matched: 9, more: true });
    expect(withoutDevice(partial, device('zz').id)).toBe(partial);
  });
});
