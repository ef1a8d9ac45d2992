import type { DeviceRecord, PairRecord, PairTable } from './pair-records';
import type { PairDevice, PairEffect, PairPathOptions } from './pair-types';
import type { TimerQueue } from './timer-queue';

export type TimerItem =
  | { kind: 'punch' | 'release' | 'retry'; pair: PairRecord }
  | { kind: 'udp' | 'forget'; id: string };

/** An online device's record with its presence narrowed. */
export type OnlineDevice = DeviceRecord & {
  presence: Extract<DeviceRecord['presence'], { state: 'online' }>;
};

/** What the punch and relay parts of the core share: state, the clock and the effects of one event. */
export class CoreContext {
  now = 0;
  effects: PairEffect[] = [];
  private generation = 0;

  constructor(
    readonly opts: PairPathOptions,
    readonly devices: Map<string, DeviceRecord>,
    readonly table: PairTable,
    readonly timers: TimerQueue<TimerItem>,
  ) {}

  online(id: string): OnlineDevice | undefined {
    const d = this.devices.get(id);
    return d?.presence.state === 'online' ? (d as OnlineDevice) : undefined;
  }

  bothOnline(pair: PairRecord): boolean {
    return this.online(pair.a) !== undefined && this.online(pair.b) !== undefined;
  }

  view(id: string): PairDevice | undefined {
    return this.devices.get(id)?.view;
  }

  nextGeneration(): number {
    this.generation += 1;
    return this.generation;
  }

  log(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void {
    this.effects.push({ kind: 'log', level, msg, fields });
  }

  /**
   * No UDP from the device reached the reflectors: none seen since it came online (when
   * observations reach the core), else no reflexive or port-mapped candidate in the netmap.
   */
  udpUnseen(id: string): boolean {
    if (!this.opts.reflectorsRun) return false;
    const d = this.devices.get(id);
    if (!d) return false;
    if (d.presence.state === 'online' && this.opts.tracksReflexive) return d.presence.seen.length === 0;
    return !learnedUdp(d.view);
  }

  /**
   * Whether the device should reach a relay over TCP: no UDP of it seen since it came online for the
   * whole wait. Within the wait its UDP may be on the way, so the netmap decides: a device whose UDP
   * reached a reflector before (a reflexive or port-mapped candidate) gets UDP first and is told
   * again, with the fallback, if nothing is seen by the end of the wait; one whose UDP never did
   * keeps the fallback it is on (a broker restart, a quick reconnect: a `relay` over UDP would make
   * its agent drop the working TCP link until the wait ends) and gets UDP once some is seen.
   */
  wantsTcp(id: string): boolean {
    const d = this.online(id);
    if (!d || !this.udpUnseen(id)) return false;
    return this.now - d.presence.since >= this.opts.udpWaitMs || !learnedUdp(d.view);
  }
}

/** The netmap has an address only the device's UDP can have given (a reflector's, or a port mapping). */
function learnedUdp(view: PairDevice): boolean {
  return view.candidates.some((c) => c.kind === 'reflexive' || c.kind === 'portmapped');
}
