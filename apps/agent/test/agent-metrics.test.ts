import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import type { FirewallBackend, FirewallCounters } from '@trellis/firewall';
import type { NetmapPeer, PeerStatus, StatusResponse } from '@trellis/proto';
import pino from 'pino';
import { AgentMetrics } from '../src/agent/agent-metrics';
import { PeerGuard } from '../src/agent/peer-guard';
import type { Netmap } from '../src/control/netmap-tracker';
import { PeerPins } from '../src/trust/peer-pins';
import { statusFixture } from './helpers/status-fixture';

const KEY = 'YR0XejcPpMkb3Xap9f0woGDjp3DE8DMObGhdvEvSPWg=';

function peer(name: string, more: Partial<PeerStatus>): PeerStatus {
  return {
    id: name,
    name,
    dnsName: `${name}.acme.trellis.test`,
    address: '100.64.0.2',
    publicKey: KEY,
    online: true,
    endpoint: null,
    candidates: [],
    lastHandshake: null,
    rxBytes: 0,
    txBytes: 0,
    ...more,
  };
}

const refusal = {
  address: '100.64.0.9',
  deviceId: 'x',
  name: 'x',
  pinnedKey: KEY,
  offeredKey: KEY,
  reason: 'key differs from the pinned one',
  since: '2026-01-01T00:00:00Z',
};

function status(more: Partial<StatusResponse> = {}): StatusResponse {
  return statusFixture({
    peers: [
      peer('a', { path: 'direct-lan' }),
      peer('b', { path: 'relay', relayName: 'r1' }),
      peer('c', { path: 'relay' }),
      peer('d', {}),
      peer('x', { refused: true }),
    ],
    guard: {
      refused: [refusal],
      keyChanges: [],
      firewall: { backend: 'nftables', lastApply: null, lastError: 'nft: no such table' },
    },
    ...more,
  });
}

/** The samples of one metric, as `labels -> value` (`{}` for none). */
function samples(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out[m[2] ?? '{}'] = Number(m[3]);
  }
  return out;
}

describe('AgentMetrics', () => {
  it('reads the state, the broker, peers by path and refusals from the status at each scrape', async () => {
    let current = status();
    const metrics = new AgentMetrics({ status: async () => current, firewallCounters: async () => null });
    let text = await metrics.metrics();
    expect(samples(text, 'trellis_agent_state')).toMatchObject({
      '{state="connected"}': 1,
      '{state="offline"}': 0,
    });
    expect(samples(text, 'trellis_agent_broker_connected')).toEqual({ '{}': 1 });
    // The refused peer is counted as refused, not by path.
    expect(samples(text, 'trellis_agent_peers')).toEqual({
      '{path="direct-lan"}': 1,
      '{path="direct-internet"}': 0,
      '{path="relay"}': 2,
      '{path="none"}': 1,
    });
    expect(samples(text, 'trellis_agent_peers_refused')).toEqual({ '{}': 1 });
    expect(samples(text, 'trellis_agent_firewall_failing')).toEqual({ '{backend="nftables"}': 1 });
    current = status({ state: 'offline', broker: { ...current.broker, connected: false }, peers: [] });
    current.guard = { refused: [], keyChanges: [], firewall: null };
    text = await metrics.metrics();
    expect(samples(text, 'trellis_agent_state')).toMatchObject({
      '{state="connected"}': 0,
      '{state="offline"}': 1,
    });
    expect(samples(text, 'trellis_agent_broker_connected')).toEqual({ '{}': 0 });
    expect(samples(text, 'trellis_agent_peers_refused')).toEqual({ '{}': 0 });
    // No firewall (--firewall off): no answer rather than a false "not failing".
    expect(samples(text, 'trellis_agent_firewall_failing')).toEqual({});
  });

  it("counts the firewall's packets across scrapes, and again from zero after a full reload", async () => {
    let counters: FirewallCounters = {
      dropped: { packets: 5, bytes: 500 },
      accepted: { packets: 10, bytes: 1 },
    };
    const metrics = new AgentMetrics({
      status: async () => status(),
      firewallCounters: async () => counters,
    });
    const packets = async () => samples(await metrics.metrics(), 'trellis_agent_firewall_packets_total');
    expect(await packets()).toEqual({ '{verdict="accepted"}': 10, '{verdict="dropped"}': 5 });
    counters = { dropped: { packets: 7, bytes: 700 }, accepted: { packets: 10, bytes: 1 } };
    expect(await packets()).toEqual({ '{verdict="accepted"}': 10, '{verdict="dropped"}': 7 });
    // The agent replaced the ruleset: the kernel counts from zero, and so does the difference.
    metrics.firewallApplied('full', 0.04, 0);
    counters = { dropped: { packets: 9, bytes: 0 }, accepted: { packets: 1, bytes: 0 } };
    expect(await packets()).toEqual({ '{verdict="accepted"}': 11, '{verdict="dropped"}': 16 });
    // Someone else replaced it: a count smaller than the last one is counted from zero.
    counters = { dropped: { packets: 2, bytes: 0 }, accepted: { packets: 3, bytes: 0 } };
    expect(await packets()).toEqual({ '{verdict="accepted"}': 13, '{verdict="dropped"}': 18 });
  });

  it('counts what PeerGuard reports: key changes, refusals, applies by mode and their time, failures, cut flows', async () => {
    const metrics = new AgentMetrics({ status: async () => status(), firewallCounters: async () => null });
    let fail = false;
    const firewall: FirewallBackend = {
      name: 'fake',
      apply: async () => {
        if (fail) throw new Error('nft: syntax error');
        return { changed: true, mode: 'incremental', cut: 2 };
      },
      remove: async () => undefined,
      counters: async () => ({ dropped: { packets: 0, bytes: 0 } }),
    };
    const dir = mkdtempSync(join(tmpdir(), 'trellis-metrics-'));
    try {
      const pins = await PeerPins.open(dir);
      const guard = new PeerGuard(pins, firewall, pino({ level: 'silent' }), metrics);
      const netmap = {
        self: { address: '100.64.0.1' },
        peers: new Map(),
        access: new Map(),
      } as unknown as Netmap;
      await guard.enforce('trellis0', netmap, []);
      fail = true;
      await expect(guard.enforce('trellis0', netmap, [])).rejects.toThrow('firewall: nft: syntax error');
      // A peer pinned with one key, then offered with another and no proof: refused, counted once.
      const x: NetmapPeer = {
        id: randomUUID(),
        name: 'x',
        dnsName: 'x.acme.trellis.test',
        publicKey: generateKeyPair().publicKey,
        address: '100.64.0.9',
        allowedIps: ['100.64.0.9/32'],
        endpoints: [],
        online: true,
      };
      guard.trusted([x]);
      const swapped = { ...x, publicKey: generateKeyPair().publicKey };
      expect(guard.trusted([swapped])).toEqual([]);
      expect(guard.trusted([swapped])).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    metrics.keyChanged('rotated');
    const text = await metrics.metrics();
    expect(samples(text, 'trellis_agent_firewall_applies_total')).toEqual({ '{mode="incremental"}': 1 });
    expect(samples(text, 'trellis_agent_firewall_apply_seconds_count')).toEqual({
      '{mode="incremental"}': 1,
    });
    expect(samples(text, 'trellis_agent_firewall_apply_failures_total')).toEqual({ '{}': 1 });
    expect(samples(text, 'trellis_agent_firewall_flows_cut_total')).toEqual({ '{}': 2 });
    expect(samples(text, 'trellis_agent_key_changes_total')).toEqual({ '{kind="rotated"}': 1 });
    expect(samples(text, 'trellis_agent_peer_refusals_total')).toEqual({ '{}': 1 });
  });
});
