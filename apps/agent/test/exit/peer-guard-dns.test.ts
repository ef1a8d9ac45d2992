import type { ApplyResult, FirewallBackend, FirewallCounters, InboundPolicy } from '@trellis/firewall';
import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import pino from 'pino';
import { PeerGuard } from '../../src/agent/peer-guard';
import type { Netmap } from '../../src/control/netmap-tracker';

// An exit node lets its clients reach its DNS stub: PeerGuard passes them on as dnsFrom.

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

const self = { id: '00000000-0000-4000-8000-000000000001', address: '100.64.0.1' } as NetmapSelf;
const peer = { id: '00000000-0000-4000-8000-000000000002', address: '100.64.0.2' } as NetmapPeer;
const netmap: Netmap = { serial: 1, self, peers: [peer], access: new Map(), virtual: [] };

describe('PeerGuard.enforce with exit node clients', () => {
  it('passes the clients on as dnsFrom, and nothing when there are none', async () => {
    const firewall = new RecordingFirewall();
    const guard = new PeerGuard(null, firewall, pino({ level: 'silent' }));
    await guard.enforce('trellis0', netmap, [peer], ['100.64.0.2']);
    await guard.enforce('trellis0', netmap, [peer]);
    expect(firewall.applied.map((p) => p.dnsFrom)).toEqual([['100.64.0.2'], undefined]);
    expect(firewall.applied[0]?.peers).toEqual([{ address: '100.64.0.2', allow: [] }]);
  });
});

describe('PeerGuard.enforce on macOS', () => {
  it("names the interface as the OS does: the pf rules name the utun, not the agent's name", async () => {
    const firewall = new RecordingFirewall();
    const utun = (name: string) => (name === 'trellis0' ? 'utun4' : name);
    const guard = new PeerGuard(null, firewall, pino({ level: 'silent' }), undefined, utun);
    await guard.enforce('trellis0', netmap, [peer]);
    expect(firewall.applied.map((p) => p.interfaceName)).toEqual(['utun4']);
  });
});
