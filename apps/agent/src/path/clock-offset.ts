/** One ping/pong exchange: local send time, the broker's clock in the pong, local receive time. */
export interface ClockSample {
  sentAt: number;
  serverTime: number;
  receivedAt: number;
}

export interface ClockOffsetOptions {
  /** How many recent samples to choose from; old ones fall out so drift is followed. */
  window: number;
  /** Samples with a longer round trip say little about the offset and are ignored. */
  maxRttMs: number;
}

export const DEFAULT_CLOCK_OFFSET_OPTIONS: ClockOffsetOptions = { window: 8, maxRttMs: 10_000 };

/**
 * Estimates `broker clock - local clock` from ping/pong pairs, NTP style: the broker read its clock
 * somewhere inside the round trip, assumed in the middle, so the error is at most half the RTT. Of the
 * recent samples the one with the smallest RTT is the tightest bound, so it wins. Pure: no clock reads.
 */
export class ClockOffsetEstimator {
  private readonly samples: Array<ClockSample & { rtt: number }> = [];
  private readonly opts: ClockOffsetOptions;

  constructor(opts: Partial<ClockOffsetOptions> = {}) {
    this.opts = { ...DEFAULT_CLOCK_OFFSET_OPTIONS, ...opts };
  }

  /** Adds a sample; returns false (and ignores it) when its times cannot be right. */
  addSample(sample: ClockSample): boolean {
    const rtt = sample.receivedAt - sample.sentAt;
    if (!Number.isFinite(rtt) || !Number.isFinite(sample.serverTime)) return false;
    if (rtt < 0 || rtt > this.opts.maxRttMs) return false;
    this.samples.push({ ...sample, rtt });
    if (this.samples.length > this.opts.window) this.samples.shift();
    return true;
  }

  private best(): (ClockSample & { rtt: number }) | null {
    let best: (ClockSample & { rtt: number }) | null = null;
    for (const s of this.samples) if (best === null || s.rtt < best.rtt) best = s;
    return best;
  }

  /** Broker clock minus local clock in ms, or null before the first sample. */
  get offsetMs(): number | null {
    const b = this.best();
    return b === null ? null : b.serverTime - (b.sentAt + b.receivedAt) / 2;
  }

  /** RTT of the sample the offset comes from: the offset is right to within half of it. */
  get rttMs(): number | null {
    return this.best()?.rtt ?? null;
  }

  /** A broker timestamp in the local clock (unchanged while no sample exists: clocks assumed synced). */
  toLocal(serverMs: number): number {
    return serverMs - (this.offsetMs ?? 0);
  }

  toServer(localMs: number): number {
    return localMs + (this.offsetMs ?? 0);
  }
}
