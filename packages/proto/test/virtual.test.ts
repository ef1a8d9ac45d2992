import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateVirtualDeviceRequest,
  DeltaMessage,
  DeviceState,
  decodeBrokerEvent,
  encodeBrokerEvent,
  HostedVirtual,
  isVirtual,
  LanAddress,
  lanAddressProblem,
  NetmapMessage,
} from '../src';

describe('virtual devices on the wire', () => {
  it.each(['192.168.1.100', '10.0.0.1', '172.16.5.4', '203.0.113.9', '192.168.1.0'])(
    'takes LAN address %s',
    (a) => {
      expect(lanAddressProblem(a)).toBeNull();
      expect(LanAddress.safeParse(a).success).toBe(true);
    },
  );

  it.each([
    ['192.168.1', 'dotted IPv4'],
    ['192.168.1.256', 'dotted IPv4'],
    ['100.64.0.5', 'overlay'],
    ['127.0.0.1', '127.0.0.0/8'],
    ['169.254.1.1', '169.254.0.0/16'],
    ['224.0.0.1', '224.0.0.0/4'],
    ['255.255.255.255', '240.0.0.0/4'],
    ['0.0.0.0', '0.0.0.0/8'],
  ])('refuses LAN address %s (%s)', (a, why) => {
    expect(lanAddressProblem(a)).toContain(why);
    expect(LanAddress.safeParse(a).success).toBe(false);
  });

  const gateway = randomUUID();
  const vd: DeviceState = {
    id: randomUUID(),
    name: 'printer',
    address: '100.64.0.9',
    via: gateway,
    lanAddress: '192.168.1.100',
    endpoints: [],
    online: false,
    tags: ['tag:cams'],
  };

  it('a device state has a key, or via and a LAN address, never both or neither', () => {
    expect(DeviceState.safeParse(vd).success).toBe(true);
    expect(isVirtual(vd)).toBe(true);
    const key = randomBytes(32).toString('base64');
    expect(DeviceState.safeParse({ ...vd, publicKey: key }).success).toBe(false);
    expect(DeviceState.safeParse({ ...vd, via: undefined }).success).toBe(false);
    expect(DeviceState.safeParse({ ...vd, lanAddress: undefined }).success).toBe(false);
    const real = { ...vd, via: undefined, lanAddress: undefined, publicKey: key };
    expect(DeviceState.safeParse(real).success).toBe(true);
    expect(isVirtual(real)).toBe(false);
  });

  it('a virtual device travels between brokers', () => {
    const event = { kind: 'device-upsert' as const, accountId: randomUUID(), serial: 3, device: vd };
    const decoded = decodeBrokerEvent(encodeBrokerEvent(event));
    expect(decoded).toEqual({ ok: true, event });
  });

  it('a netmap and a delta carry virtual devices beside peers, and a gateway its hosted ones', () => {
    const entry = {
      id: vd.id,
      name: 'printer',
      dnsName: 'printer.acme.mesh.test',
      address: vd.address,
      via: gateway,
    };
    const self = {
      id: gateway,
      name: 'gw',
      dnsName: 'gw.acme.mesh.test',
      address: '100.64.0.2',
      accountName: 'acme',
      overlayPrefix: '100.64.0.0/10',
      virtualDevices: [
        { id: vd.id, name: 'printer', address: vd.address, lanAddress: '192.168.1.100', access: [] },
      ],
    };
    const netmap = { type: 'netmap', serial: 1, self, peers: [], access: [], virtual: [entry] };
    expect(NetmapMessage.parse(netmap).virtual).toEqual([entry]);
    expect(NetmapMessage.parse(netmap).self.virtualDevices).toHaveLength(1);
    const delta = { type: 'delta', serial: 2, upsert: [], remove: [], virtualUpsert: [entry] };
    expect(DeltaMessage.parse(delta).virtualUpsert).toEqual([entry]);
    // A virtual device's address must be in the overlay, its gateway a device id.
    expect(NetmapMessage.safeParse({ ...netmap, virtual: [{ ...entry, address: '10.0.0.1' }] }).success).toBe(
      false,
    );
    expect(NetmapMessage.safeParse({ ...netmap, virtual: [{ ...entry, via: 'gw' }] }).success).toBe(false);
    const hosted = self.virtualDevices[0]!;
    expect(HostedVirtual.safeParse({ ...hosted, lanAddress: '100.64.0.3' }).success).toBe(false);
    expect(HostedVirtual.safeParse({ ...hosted, access: [{ peers: [], in: [] }] }).success).toBe(false);
  });

  it('a registration names the device, its LAN address and its gateway', () => {
    const ok = { name: 'cam-1', lanAddress: '192.168.1.100', gateway: 'gw-a', tags: ['tag:cams'] };
    expect(CreateVirtualDeviceRequest.parse(ok)).toEqual(ok);
    expect(CreateVirtualDeviceRequest.safeParse({ ...ok, name: 'Cam 1' }).success).toBe(false);
    expect(CreateVirtualDeviceRequest.safeParse({ ...ok, extra: 1 }).success).toBe(false);
    expect(CreateVirtualDeviceRequest.safeParse({ ...ok, gateway: '' }).success).toBe(false);
  });
});
