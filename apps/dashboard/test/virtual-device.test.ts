import type { DeviceInfo } from '@trellis/proto';
import {
  gatewayCandidates,
  gatewayProblem,
  isVirtualDevice,
  namesById,
  unknownGateways,
  viaText,
  virtualDeviceRequest,
} from '../src/pages/virtual-device';

const GW = '00000000-0000-4000-8000-000000000001';
const OTHER_GW = '00000000-0000-4000-8000-000000000002';

const device = (name: string, id: string, extra: Partial<DeviceInfo> = {}): DeviceInfo => ({
  id,
  name,
  dnsName: `${name}.acme.test`,
  hostname: name,
  os: 'linux',
  publicKey: `${'A'.repeat(43)}=`,
  address: '100.64.0.1',
  via: null,
  lanAddress: null,
  endpoints: [],
  online: true,
  lastSeen: null,
  createdAt: '2026-12-06T00:00:00.000Z',
  tags: [],
  user: null,
  approved: true,
  ...extra,
});
const gateway = device('office-gw', GW);
const printer = device('printer', '00000000-0000-4000-8000-000000000010', {
  publicKey: null,
  via: GW,
  lanAddress: '192.168.1.100',
  online: false,
  os: '',
});
const camera = device('camera', '00000000-0000-4000-8000-000000000011', {
  publicKey: null,
  via: OTHER_GW,
  lanAddress: '192.168.1.100',
  online: false,
});
const fields = { name: 'printer', lanAddress: '192.168.1.100', gateway: 'office-gw', tags: '' };

describe('virtual devices in the device list', () => {
  it('a device with a gateway is virtual; one of its own is not', () => {
    expect(isVirtualDevice(printer)).toBe(true);
    expect(isVirtualDevice(gateway)).toBe(false);
  });

  it('names its gateway by name when the list holds it, by id when it does not', () => {
    const names = namesById([gateway, printer, camera]);
    expect(viaText(printer, names)).toBe('via office-gw · LAN 192.168.1.100');
    expect(viaText(camera, names)).toBe(`via ${OTHER_GW} · LAN 192.168.1.100`);
    // A gateway asked for and not visible to this user (null) is still shown, by id.
    expect(viaText(camera, new Map([[OTHER_GW, null]]))).toBe(`via ${OTHER_GW} · LAN 192.168.1.100`);
    expect(viaText(gateway, names)).toBe('');
  });

  it('asks once for each gateway the list does not name, and never again once answered', () => {
    const twin = { ...camera, id: '00000000-0000-4000-8000-000000000012', name: 'camera-2' };
    const rows = [gateway, printer, camera, twin];
    expect(unknownGateways(rows, namesById(rows))).toEqual([OTHER_GW]);
    expect(unknownGateways(rows, new Map([...namesById(rows), [OTHER_GW, null]]))).toEqual([]);
  });

  it('offers as gateways only approved devices of their own', () => {
    const waiting = device('new-laptop', '00000000-0000-4000-8000-000000000020', { approved: false });
    expect(gatewayCandidates([gateway, printer, waiting]).map((d) => d.name)).toEqual(['office-gw']);
  });
});

describe('the add-a-virtual-device form’s request', () => {
  it('trims the fields and sends tags only when given', () => {
    expect(virtualDeviceRequest({ ...fields, name: ' printer ', gateway: ' office-gw ' })).toEqual({
      request: { name: 'printer', lanAddress: '192.168.1.100', gateway: 'office-gw' },
    });
    expect(virtualDeviceRequest({ ...fields, tags: 'tag:printer, ,tag:lan' })).toEqual({
      request: { ...fields, tags: ['tag:printer', 'tag:lan'] },
    });
  });

  it('names the field and the proto schema’s reason for a mistake', () => {
    expect(virtualDeviceRequest({ ...fields, name: 'Printer 1' })).toEqual({
      error: 'Name: must be a DNS label: a-z, 0-9 and inner hyphens',
    });
    expect(virtualDeviceRequest({ ...fields, lanAddress: '100.64.1.5' })).toEqual({
      error: 'LAN address: must not be inside the overlay 100.64.0.0/10',
    });
    expect(virtualDeviceRequest({ ...fields, lanAddress: 'printer.lan' })).toEqual({
      error: 'LAN address: must be a dotted IPv4 address',
    });
    expect(virtualDeviceRequest({ ...fields, gateway: '  ' })).toEqual({
      error: 'Gateway: choose a gateway device',
    });
    expect(virtualDeviceRequest({ ...fields, tags: 'printer' })).toEqual({
      error: 'Tags: must be tag:NAME with NAME a-z, 0-9 and inner hyphens',
    });
  });

  it('refuses a virtual device or one awaiting approval as gateway; leaves a name it has not fetched to the broker', () => {
    const waiting = device('new-laptop', '00000000-0000-4000-8000-000000000020', { approved: false });
    const rows = [gateway, printer, waiting];
    expect(gatewayProblem(rows, 'printer')).toMatch(/printer is a virtual device/);
    expect(gatewayProblem(rows, 'new-laptop')).toMatch(/awaiting approval/);
    expect(gatewayProblem(rows, 'office-gw')).toBeNull();
    expect(gatewayProblem(rows, 'elsewhere')).toBeNull();
  });
});
