import { type Agent, request } from 'node:https';
import { type NetmapRelay, RELAY_PROBE_PATH, type RelayTcpInfo } from '@trellis/proto';
import type { Logger } from 'pino';
import { realTimers, type Timers } from '../control/timers';
import { createPinnedAgent } from '../trust/broker-trust';

export const RELAY_PROBE_INTERVAL_MS = 300_000;
const PROBE_TIMEOUT_MS = 5_000;

/** `wss://host:port` → `https://host:port/v1/probe`. */
export function relayProbeUrl(tcp: RelayTcpInfo): string {
  return `${tcp.url.replace(/^wss:/, 'https:')}${RELAY_PROBE_PATH}`;
}

/**
 * One round trip to a relay's TCP listener, in ms: the time from writing a GET of the probe path
 * (on a TLS connection whose certificate already matched the pin) to its 204. Connection set-up is
 * left out: it costs a varying number of round trips and says nothing more about the path.
 */
export function probeRelay(tcp: RelayTcpInfo, agent?: Agent): Promise<number> {
  const pinned = agent ?? createPinnedAgent(tcp.fingerprint, 'relay');
  return new Promise<number>((resolve, reject) => {
    let sentAt = 0;
    const req = request(
      relayProbeUrl(tcp),
      { agent: pinned, method: 'GET', timeout: PROBE_TIMEOUT_MS },
      (res) => {
        const ms = performance.now() - sentAt;
        res.resume();
        if (res.statusCode === 204) resolve(ms);
        else reject(new Error(`relay probe answered ${res.statusCode}, expected 204`));
      },
    );
    req.on('socket', () => {
      sentAt = performance.now();
    });
    req.on('timeout', () => req.destroy(new Error('relay probe timed out')));
    req.on('error', reject);
    req.end();
  }).finally(() => {
    if (!agent) pinned.destroy();
  });
}

/**
 * The figures worth sending: a relay's previous figure stays while the new one is within 20 % (at
 * least 5 ms) of it, so jitter does not make a new `netinfo` every round. Relays that did not answer
 * are left out.
 */
export function settleRtts(
  previous: Readonly<Record<string, number>>,
  measured: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, ms] of Object.entries(measured)) {
    const before = previous[id];
    const close = before !== undefined && Math.abs(ms - before) < Math.max(5, before * 0.2);
    out[id] = close ? before : Math.round(ms);
  }
  return out;
}

export interface RelayRttProberOptions {
  logger: Logger;
  /** Called with every round's settled figures (relay id → ms). */
  onRtts(rtts: Record<string, number>): void;
  timers?: Timers;
  intervalMs?: number;
  probe?: (tcp: RelayTcpInfo) => Promise<number>;
}

/**
 * Times the netmap's relays for the broker's relay choice (`netinfo.relayRttMs`): when the relay
 * list changes, every 5 minutes, and on a network change. Only relays with a TCP listener can be
 * timed (the probe is an HTTPS request to it); UDP-only relays are skipped.
 */
export class RelayRttProber {
  private readonly timers: Timers;
  private relays: NetmapRelay[] = [];
  private relaysKey = '';
  private rtts: Record<string, number> = {};
  private interval: unknown = null;
  private current: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: RelayRttProberOptions) {
    this.timers = opts.timers ?? realTimers;
  }

  start(): void {
    this.interval = this.timers.setInterval(
      () => void this.probeNow(),
      this.opts.intervalMs ?? RELAY_PROBE_INTERVAL_MS,
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.interval !== null) this.timers.clearInterval(this.interval);
    this.interval = null;
  }

  /** The netmap's relays; probes at once when they changed. */
  setRelays(relays: readonly NetmapRelay[]): void {
    const timed = relays.filter((r) => r.tcp !== undefined);
    const key = JSON.stringify(timed.map((r) => [r.id, r.tcp]));
    if (key === this.relaysKey) return;
    this.relaysKey = key;
    this.relays = timed;
    void this.probeNow();
  }

  /** One round over every relay; a call during a round asks for one more after it and waits for both. */
  probeNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again && !this.stopped);
      } finally {
        this.current = null;
      }
    })();
    return this.current;
  }

  private async round(): Promise<void> {
    const probe = this.opts.probe ?? probeRelay;
    const relays = this.relays;
    const results = await Promise.all(
      relays.map((r) =>
        probe(r.tcp!).then(
          (ms) => [r.id, ms] as const,
          (err: Error) => {
            this.opts.logger.info({ relay: r.name, err: err.message }, 'relay probe failed');
            return null;
          },
        ),
      ),
    );
    if (this.stopped || relays !== this.relays) return; // stopped, or a newer list probes itself
    const measured = Object.fromEntries(results.filter((x) => x !== null));
    this.rtts = settleRtts(this.rtts, measured);
    this.opts.onRtts({ ...this.rtts });
  }
}
