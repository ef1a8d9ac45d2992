import type { ApplyMode, FirewallCounters, PacketCount } from '@trellis/firewall';
import type { AgentState, StatusResponse } from '@trellis/proto';
import { AgentState as AgentStates, PeerStatus } from '@trellis/proto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What PeerGuard reports as it happens (AgentMetrics counts it). */
export interface GuardEvents {
  keyChanged(kind: 'rotated' | 'rekeyed'): void;
  /** A peer newly refused: its key contradicts its pin. */
  refused(): void;
  firewallApplied(mode: ApplyMode, seconds: number, cut: number): void;
  firewallFailed(): void;
}

/** What a scrape reads: the agent's status and the firewall's kernel counters. */
export interface AgentReadings {
  status(): Promise<StatusResponse>;
  firewallCounters(): Promise<FirewallCounters | null>;
}

const PATHS = PeerStatus.shape.path.unwrap().options;
const VERDICTS = ['accepted', 'dropped', 'rejected'] as const;

/**
 * The agent's Prometheus metrics (`trellisd --metrics-listen`). Counters of events come from
 * PeerGuard as they happen; gauges and the firewall's packet counts are read at scrape time.
 */
export class AgentMetrics implements GuardEvents {
  readonly registry = new Registry();
  private readonly state = this.gauge('trellis_agent_state', 'The agent state (1 for the current one)', [
    'state',
  ]);
  private readonly brokerConnected = this.gauge(
    'trellis_agent_broker_connected',
    'Whether the control connection to a broker is up',
  );
  private readonly peers = this.gauge('trellis_agent_peers', 'Peers in the netmap, by path', ['path']);
  private readonly peersRefused = this.gauge(
    'trellis_agent_peers_refused',
    'Peers left out because their key contradicts the key pinned for their address',
  );
  private readonly firewallFailing = this.gauge(
    'trellis_agent_firewall_failing',
    'Whether the last firewall apply failed, by backend (absent with --firewall off)',
    ['backend'],
  );
  private readonly refusals = this.counter(
    'trellis_agent_peer_refusals_total',
    'Peers refused for a key that contradicts their pin (each offered key once)',
  );
  private readonly keyChanges = this.counter(
    'trellis_agent_key_changes_total',
    "Peers' key changes accepted, by proof (rotated: signed by the old key; rekeyed: by an admin)",
    ['kind'],
  );
  private readonly applies = this.counter(
    'trellis_agent_firewall_applies_total',
    'Firewall applies that succeeded, by mode (none, incremental, full)',
    ['mode'],
  );
  private readonly failures = this.counter(
    'trellis_agent_firewall_apply_failures_total',
    'Firewall applies that failed (the netmap change waits for the next one)',
  );
  private readonly cut = this.counter(
    'trellis_agent_firewall_flows_cut_total',
    'Established flows cut because a policy change forbade them',
  );
  private readonly applySeconds = new Histogram({
    name: 'trellis_agent_firewall_apply_seconds',
    help: 'Time to apply a policy to the firewall',
    labelNames: ['mode'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly packets = this.counter(
    'trellis_agent_firewall_packets_total',
    'Packets from peers the firewall let in (accepted), dropped, or answered with a reset (rejected)',
    ['verdict'],
  );
  /** The kernel's counts at the previous scrape (they restart when the ruleset is replaced). */
  private readonly lastPackets = new Map<string, number>();

  constructor(private readonly readings: AgentReadings) {}

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, with the gauges and packet counts read now. */
  async metrics(): Promise<string> {
    const [status, counters] = await Promise.all([
      this.readings.status(),
      this.readings.firewallCounters().catch(() => null),
    ]);
    this.observeStatus(status);
    if (counters) this.observePackets(counters);
    return this.registry.metrics();
  }

  keyChanged(kind: 'rotated' | 'rekeyed'): void {
    this.keyChanges.inc({ kind });
  }

  refused(): void {
    this.refusals.inc();
  }

  firewallApplied(mode: ApplyMode, seconds: number, cut: number): void {
    // The kernel counts from zero in a replaced ruleset: what it counted since the last scrape
    // is lost, and the next scrape adds everything counted since.
    if (mode === 'full') this.lastPackets.clear();
    this.applies.inc({ mode });
    this.applySeconds.observe({ mode }, seconds);
    if (cut > 0) this.cut.inc(cut);
  }

  firewallFailed(): void {
    this.failures.inc();
  }

  private observeStatus(s: StatusResponse): void {
    for (const state of AgentStates.options)
      this.state.set({ state }, state === (s.state as AgentState) ? 1 : 0);
    this.brokerConnected.set(s.broker.connected ? 1 : 0);
    const byPath = new Map<string, number>(PATHS.map((p) => [p, 0]));
    for (const p of s.peers)
      if (!p.refused) byPath.set(p.path ?? 'none', (byPath.get(p.path ?? 'none') ?? 0) + 1);
    for (const [path, n] of byPath) this.peers.set({ path }, n);
    this.peersRefused.set(s.guard?.refused.length ?? 0);
    const firewall = s.guard?.firewall;
    this.firewallFailing.reset();
    if (firewall)
      this.firewallFailing.set({ backend: firewall.backend }, firewall.lastError === null ? 0 : 1);
  }

  private observePackets(c: FirewallCounters): void {
    for (const verdict of VERDICTS) {
      const count: PacketCount | undefined = c[verdict];
      if (!count) continue;
      const before = this.lastPackets.get(verdict) ?? 0;
      // A smaller count: the ruleset was replaced by someone else and counts from zero again.
      this.packets.inc({ verdict }, count.packets >= before ? count.packets - before : count.packets);
      this.lastPackets.set(verdict, count.packets);
    }
  }

  private gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
