import type { RelayLoadMessage } from '@trellis/proto';
import type { Relay } from '../relay';

/** Rates since the previous sample, for the periodic `load` message. */
export class LoadMeter {
  private last = { at: 0, packets: 0, bytes: 0, drops: 0 };

  constructor(
    private readonly relay: Relay,
    private readonly now: () => number = Date.now,
  ) {
    this.reset();
  }

  reset(): void {
    this.last = { at: this.now(), ...this.read() };
  }

  sample(): Omit<RelayLoadMessage, 'type'> {
    const now = this.now();
    const current = this.read();
    const seconds = Math.max(0.001, (now - this.last.at) / 1000);
    const rate = (n: number) => Math.max(0, n) / seconds;
    const load = {
      allocations: this.relay.size,
      packetsPerSecond: rate(current.packets - this.last.packets),
      bytesPerSecond: rate(current.bytes - this.last.bytes),
      dropsPerSecond: rate(current.drops - this.last.drops),
    };
    this.last = { at: now, ...current };
    return load;
  }

  private read() {
    const t = this.relay.totals();
    const drops = Object.values(t.drops).reduce((a, b) => a + b, 0);
    return { packets: t.udp.packets + t.tcp.packets, bytes: t.udp.bytes + t.tcp.bytes, drops };
  }
}
