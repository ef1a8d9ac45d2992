import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplyResult, FirewallBackend, FirewallCounters, InboundPolicy } from '@trellis/firewall';
import { ALLOW_ALL } from '@trellis/proto';
import pino from 'pino';
import { askUdp } from '../../../../packages/dns/test/support/dns-client';
import { desiredConfigFromNetmap } from '../../src/agent/desired-config';
import { PeerGuard } from '../../src/agent/peer-guard';
import { planVirtual, VirtualDevices, virtualStatus } from '../../src/agent/virtual-devices';
import type { Netmap, PeerRules } from '../../src/control/netmap-tracker';
import { MeshDns } from '../../src/dns/mesh-dns';
import { meshZoneOf } from '../../src/dns/mesh-zone';
import { PeerPins } from '../../src/trust/peer-pins';
import { id, peerOf, selfOf, virtualOf, ZONE } from './fixtures';

const silent = pino({ level: 'silent' });

class RecordingFirewall implements FirewallBackend {
  readonly name = 'recording';
  readonly applied: InboundPolicy[] = [];
  async apply(policy: InboundPolicy): Promise<ApplyResult> {
    this.applied.push(policy);
    return { changed: true, mode: 'full', cut: 0 };
  }
  async remove(): Promise<void> {}
  async counters(): Promise<FirewallCounters> {
    throw new Error('not used');
  }
}

// This device (1), gateway A (2) with a printer, gateway B (3) with a camera, a printer behind this
// device itself (12), a camera behind a gateway not in the netmap (13).
const self = selfOf(1, 'laptop', '100.64.0.1');
const gwA = peerOf(2, 'gwa', '100.64.0.2');
const gwB = peerOf(3, 'gwb', '100.64.0.3');
const printer = virtualOf(10, 'printer', '100.64.0.10', 2);
const camera = virtualOf(11, 'camera', '100.64.0.11', 3);
const ownPrinter = virtualOf(12, 'lobby', '100.64.0.12', 1);
const orphan = virtualOf(13, 'orphan', '100.64.0.13', 9);
const ipp = [{ proto: 'tcp' as const, ports: [[631, 631]] as [number, number][] }];

function netmapWith(virtual = [printer, camera, ownPrinter, orphan]): Netmap {
  const rules: PeerRules = { in: [{ proto: 'icmp' }], out: ipp };
  return {
    serial: 1,
    self,
    peers: [gwA, gwB],
    access: new Map([
      [gwA.id, { in: [], out: ALLOW_ALL }],
      [gwB.id, { in: [], out: ALLOW_ALL }],
      [printer.id, rules],
      [camera.id, rules],
    ]),
    virtual,
  };
}

describe('virtual devices on a client', () => {
  it("puts a virtual device's /32 on its gateway's tunnel only when the gateway is trusted and not this device", () => {
    const netmap = netmapWith();
    const trusted = [gwA]; // gwB refused by its pin
    const plan = planVirtual(netmap, trusted);
    const desired = desiredConfigFromNetmap(
      { ...netmap, peers: trusted },
      'k',
      51820,
      undefined,
      plan.reachable,
    );
    expect(desired.peers).toEqual([
      { publicKey: gwA.publicKey, allowedIps: ['100.64.0.2/32', '100.64.0.10/32'] },
    ]);
    expect(plan.skipped.map((s) => [s.vd.name, s.kind])).toEqual([
      ['camera', 'refused'],
      ['lobby', 'self'],
      ['orphan', 'absent'],
    ]);
    // Trusted again: its camera comes back on its tunnel.
    const both = planVirtual(netmap, [gwA, gwB]);
    const again = desiredConfigFromNetmap(netmap, 'k', 51820, undefined, both.reachable);
    expect(again.peers.map((p) => p.allowedIps)).toEqual([
      ['100.64.0.2/32', '100.64.0.10/32'],
      ['100.64.0.3/32', '100.64.0.11/32'],
    ]);
  });

  it('leaves out the virtual devices of a gateway whose key contradicts its pin (the PeerGuard check)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-vd-pins-'));
    try {
      const guard = new PeerGuard(await PeerPins.open(dir), null, silent);
      const netmap = netmapWith([printer, camera]);
      guard.trusted(netmap.peers); // pins both gateways' keys
      const swapped = { ...netmap, peers: [gwA, { ...gwB, publicKey: `${'Z'.repeat(42)}A=` }] };
      const plan = planVirtual(swapped, guard.trusted(swapped.peers));
      expect(plan.reachable.map((v) => v.name)).toEqual(['printer']);
      expect(plan.skipped.map((s) => s.reason)).toEqual([
        'its gateway gwb is refused (its key does not match its pin)',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets in from a reachable virtual device's address what it may open here, as a peer's", async () => {
    const firewall = new RecordingFirewall();
    const guard = new PeerGuard(null, firewall, silent);
    const netmap = netmapWith();
    const plan = planVirtual(netmap, [gwA]);
    await guard.enforce('trellis0', netmap, [gwA], [], plan.reachable);
    expect(firewall.applied[0]?.peers).toEqual([
      { address: '100.64.0.2', allow: [] },
      { address: '100.64.0.10', allow: [{ proto: 'icmp' }] },
    ]);
  });

  it('ignores a virtual device whose address is a peer’s, and logs it once while it lasts', () => {
    const errors: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line).msg) });
    const clash = virtualOf(14, 'clash', gwB.address, 2);
    const vds = new VirtualDevices(log);
    const netmap = netmapWith([printer, clash]);
    expect(vds.update(netmap, [gwA, gwB]).reachable.map((v) => v.name)).toEqual(['printer']);
    vds.update(netmap, [gwA, gwB]);
    expect(errors).toEqual(['virtual device ignored: its address belongs to another device']);
    expect(vds.allowedIps(gwA.id)).toEqual(['100.64.0.10/32']); // never the peer's own address
    vds.update(netmapWith([printer]), [gwA, gwB]);
    vds.update(netmap, [gwA, gwB]); // back: logged again
    expect(errors).toHaveLength(2);
  });

  it('lists every virtual device in status: reachable, or why not', () => {
    const offline = { ...gwA, online: false };
    const netmap = { ...netmapWith(), peers: [offline, gwB] };
    const rows = virtualStatus(planVirtual(netmap, [offline]), netmap);
    expect(rows.map((r) => [r.name, r.via, r.reachable, r.reason])).toEqual([
      ['camera', 'gwb', false, 'its gateway gwb is refused (its key does not match its pin)'],
      ['lobby', 'laptop', false, 'served by this device'],
      ['orphan', null, false, 'its gateway is not in the netmap'],
      ['printer', 'gwa', false, 'its gateway gwa is offline'],
    ]);
    const up = virtualStatus(planVirtual(netmapWith(), [gwA]), netmapWith());
    expect(up.find((r) => r.name === 'printer')).toEqual({
      id: id(10),
      name: 'printer',
      dnsName: `printer.acme.${ZONE}`,
      address: '100.64.0.10',
      via: 'gwa',
      reachable: true,
    });
  });
});

describe('names of virtual devices', () => {
  it('the zone answers a reachable virtual device, not one it cannot reach', () => {
    const plan = planVirtual(netmapWith(), [gwA]);
    const zone = meshZoneOf(self, [gwA], 1, plan.reachable);
    const acme = zone.view.account('acme');
    expect(acme?.address('printer')).toBe('100.64.0.10');
    expect(acme?.address('camera')).toBeUndefined();
    expect(acme?.address('gwa')).toBe('100.64.0.2');
  });

  it("the stub answers a virtual device's name", async () => {
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver: null, logger: silent, port: 0 });
    try {
      const local = { ...self, address: '127.0.0.1' };
      await dns.apply(local, [gwA], 1, planVirtual(netmapWith(), [gwA]).reachable);
      const port = Number(dns.status().listen!.split(':')[1]);
      expect((await askUdp(port, `printer.acme.${ZONE}`)).answers).toEqual([
        expect.objectContaining({ type: 'A', data: '100.64.0.10' }),
      ]);
    } finally {
      await dns.close();
    }
  });
});
