import { Counter, Gauge, Registry } from 'prom-client';
import { DROP_REASONS } from './allocation/drop-reason';
import type { Relay, RelayTotals } from './relay';

/**
 * Prometheus metrics read from the relay's own counters at scrape time, so the per-packet path
 * only bumps plain numbers. Each counter advances by the difference since its previous scrape.
 */
export class RelayMetrics {
  readonly registry = new Registry();
  /** The relay's totals for the scrape in progress: one walk over the allocations, not one per counter. */
  private scrapeTotals: RelayTotals | null = null;

  constructor(private readonly relay: Relay) {
    const registers = [this.registry];
    new Gauge({
      name: 'trellis_relay_allocations',
      help: 'Allocations open on this relay',
      registers,
      collect() {
        this.set(relay.size);
      },
    });
    const transports = (pick: 'packets' | 'bytes') => (t: RelayTotals) =>
      (['udp', 'tcp'] as const).map((transport) => [{ transport }, t[transport][pick]] as const);
    const counters: Array<
      [string, string, string[], (t: RelayTotals) => ReadonlyArray<readonly [Labels, number]>]
    > = [
      [
        'trellis_relay_forwarded_packets_total',
        'Packets forwarded, by the transport they left on',
        ['transport'],
        transports('packets'),
      ],
      [
        'trellis_relay_forwarded_bytes_total',
        'Bytes forwarded, by the transport they left on',
        ['transport'],
        transports('bytes'),
      ],
      [
        'trellis_relay_dropped_packets_total',
        'Packets dropped, by reason',
        ['reason'],
        (t) => DROP_REASONS.map((reason) => [{ reason }, t.drops[reason]] as const),
      ],
      ['trellis_relay_binds_total', 'Sides bound or moved by a valid handshake', [], (t) => [[{}, t.binds]]],
    ];
    const totalsOfThisScrape = () => this.scrapeTotals ?? relay.totals();
    for (const [name, help, labelNames, read] of counters) {
      const reported = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const [labels, value] of read(totalsOfThisScrape())) {
            const key = JSON.stringify(labels);
            const before = reported.get(key) ?? 0;
            if (value > before) this.inc(labels, value - before);
            reported.set(key, value);
          }
        },
      });
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; every counter reads the same totals. */
  async metrics(): Promise<string> {
    this.scrapeTotals = this.relay.totals();
    try {
      return await this.registry.metrics();
    } finally {
      this.scrapeTotals = null;
    }
  }
}

type Labels = Record<string, string>;
