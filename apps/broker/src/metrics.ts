import { DnsCounts } from '@trellis/dns';
import { Counter, Gauge, Registry } from 'prom-client';

/** One registry per broker instance, so several brokers in one process (tests) do not collide. */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly connectedDevices = new Gauge({
    name: 'trellis_connected_devices',
    help: 'Devices with an authenticated control connection to this instance',
    registers: [this.registry],
  });
  readonly controlMessagesIn = new Counter({
    name: 'trellis_control_messages_in_total',
    help: 'Control channel messages received, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly controlMessagesOut = new Counter({
    name: 'trellis_control_messages_out_total',
    help: 'Control channel messages sent, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  /**
   * How connected devices got their netmap: `resumed` (a delta from the one they held), `snapshot`
   * (they named one the broker could not resume from) or `asked_snapshot` (they named none).
   */
  readonly netmapStarts = new Counter({
    name: 'trellis_netmap_starts_total',
    help: 'Devices brought up to date on connecting, by how: resumed, snapshot, asked_snapshot',
    labelNames: ['how'],
    registers: [this.registry],
  });
  readonly resumesRefused = new Counter({
    name: 'trellis_netmap_resumes_refused_total',
    help: 'Reconnecting devices sent a snapshot instead of a delta, by why: token, journal, reclassed, changes',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private pendingSource: () => number = () => 0;
  private heldSource: () => number = () => 0;
  readonly admissionPending = new Gauge({
    name: 'trellis_admission_pending',
    help: 'Connections in their TLS handshake or waiting for their first netmap',
    registers: [this.registry],
    collect: () => {
      this.admissionPending.set(this.pendingSource());
    },
  });
  readonly admissionHeld = new Gauge({
    name: 'trellis_admission_held',
    help: 'Connections accepted and held, unread, until a slot among the pending ones frees',
    registers: [this.registry],
    collect: () => {
      this.admissionHeld.set(this.heldSource());
    },
  });
  /** The control server reports what trellis_admission_pending and _held show. */
  trackAdmission(pending: () => number, held: () => number): void {
    this.pendingSource = pending;
    this.heldSource = held;
  }
  readonly netmapsHeld = new Counter({
    name: 'trellis_netmaps_held_total',
    help: 'Account netmaps kept past their linger because devices were still reconnecting to the instance',
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'trellis_admission_refused_total',
    help: 'Connections closed before their TLS handshake: too many held waiting for admission, or held too long',
    registers: [this.registry],
  });
  readonly offlineMarksHeld = new Counter({
    name: 'trellis_offline_marks_held_total',
    help: 'Offline marks held back past their grace because the instance was still admitting connections',
    registers: [this.registry],
  });
  readonly enrollments = new Counter({
    name: 'trellis_enrollments_total',
    help: 'Successful device enrollments',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'trellis_errors_total',
    help: 'Rejected requests and messages, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  /** The DNS server's counts, copied into its two metrics when they are scraped. */
  readonly dnsCounts = new DnsCounts();
  readonly dnsQueries: Counter<'transport'> = new Counter({
    name: 'trellis_dns_queries_total',
    help: 'DNS queries answered by the authoritative server, by transport',
    labelNames: ['transport'],
    registers: [this.registry],
    collect: () => {
      this.dnsQueries.reset();
      for (const [transport, n] of Object.entries(this.dnsCounts.answeredBy))
        this.dnsQueries.inc({ transport }, n);
    },
  });
  readonly dnsDropped: Counter<'reason'> = new Counter({
    name: 'trellis_dns_dropped_total',
    help: 'DNS packets not answered: malformed beyond a header, not a query, or over the response rate limit',
    labelNames: ['reason'],
    registers: [this.registry],
    collect: () => {
      this.dnsDropped.reset();
      for (const [reason, n] of this.dnsCounts.droppedBy) this.dnsDropped.inc({ reason }, n);
    },
  });
  readonly relaysOnline = new Gauge({
    name: 'trellis_relays_online',
    help: 'Relays with an authenticated control connection to this instance',
    registers: [this.registry],
  });
  readonly relayAllocations = new Gauge({
    name: 'trellis_relay_allocations',
    help: 'Relay allocations held by this instance (including those of relays within their grace period)',
    registers: [this.registry],
  });
  readonly relayAllocationFailures = new Counter({
    name: 'trellis_relay_allocation_failures_total',
    help: 'Relay allocations that did not succeed, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly relayAdoptions = new Counter({
    name: 'trellis_relay_adoptions_total',
    help: 'Allocations relays reported holding when they connected: adopted, refused, claimed by a pair, or released unclaimed',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly relayMessagesDropped = new Counter({
    name: 'trellis_relay_messages_dropped_total',
    help: 'Relay reports about allocations the broker does not know, by message type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly relayPacketsPerSecond = new Gauge({
    name: 'trellis_relay_packets_per_second',
    help: 'Packets per second a relay last reported forwarding',
    labelNames: ['relay'],
    registers: [this.registry],
  });
  readonly busEventsDropped = new Counter({
    name: 'trellis_bus_events_dropped_total',
    help: 'Payloads on the cross-instance event bus (PostgreSQL NOTIFY) dropped unapplied, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly instancesLive = new Gauge({
    name: 'trellis_broker_instances_live',
    help: 'Broker instances with an unexpired lease in the shared database (this one included), as of the last sweep',
    registers: [this.registry],
  });
  readonly instanceTakeovers = new Counter({
    name: 'trellis_instance_takeovers_total',
    help: 'Dead broker instances this instance took over (their devices marked offline)',
    registers: [this.registry],
  });
  readonly instanceLeaseLost = new Counter({
    name: 'trellis_instance_lease_lost_total',
    help: 'Times this instance found its own lease taken over and closed its control connections',
    registers: [this.registry],
  });

  error(kind: string): void {
    this.errors.inc({ kind });
  }
}
