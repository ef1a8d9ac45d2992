import type { Server } from 'node:http';
import { boundPort, serveMetrics } from '@trellis/metrics';
import { RelayMetrics } from '../src/metrics';
import { Relay } from '../src/relay';
import { allocationFor } from './support/allocation-spec';
import { WireGuardPair } from './support/wireguard-pair';

describe('relay metrics', () => {
  let relay: Relay;
  let server: Server;

  beforeAll(async () => {
    relay = new Relay({ host: '127.0.0.1', ports: { first: 46000, last: 46999 } });
    server = await serveMetrics(new RelayMetrics(relay), '127.0.0.1', 0);
  });
  afterAll(async () => {
    await relay.closeAll();
    await new Promise((resolve) => server.close(resolve));
  });

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${boundPort(server)}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };

  it('exposes allocations, forwarded traffic, drops by reason and binds', async () => {
    const pair = new WireGuardPair();
    const spec = allocationFor(pair);
    await relay.open(spec);
    const core = relay.get(spec.allocationId)!.core;
    const hs = pair.handshake();
    core.receive('udp', '192.0.2.1', 1, hs.initiation); // bind a; b unbound: peer-unbound
    core.receive('udp', '192.0.2.2', 2, hs.response); // bind b, forwarded
    core.receive('udp', '192.0.2.9', 9, new Uint8Array(5)); // malformed

    const first = await scrape();
    expect(first).toContain('trellis_relay_allocations 1');
    expect(first).toContain('trellis_relay_forwarded_packets_total{transport="udp"} 1');
    expect(first).toContain('trellis_relay_forwarded_bytes_total{transport="udp"} 92');
    expect(first).toContain('trellis_relay_dropped_packets_total{reason="malformed"} 1');
    expect(first).toContain('trellis_relay_dropped_packets_total{reason="peer-unbound"} 1');
    expect(first).toContain('trellis_relay_binds_total 2');

    core.receive('udp', '192.0.2.9', 9, new Uint8Array(5));
    await relay.close(spec.allocationId); // closed allocations still count
    const second = await scrape();
    expect(second).toContain('trellis_relay_allocations 0');
    expect(second).toContain('trellis_relay_dropped_packets_total{reason="malformed"} 2');
    expect(second).toContain('trellis_relay_binds_total 2');
  });

  it('answers 404 elsewhere', async () => {
    expect((await fetch(`http://127.0.0.1:${boundPort(server)}/`)).status).toBe(404);
  });
});
