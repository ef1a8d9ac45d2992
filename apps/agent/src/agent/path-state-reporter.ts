import {
  MAX_PATH_AGE_MS,
  MAX_PATH_STATES,
  type PathStateMessage,
  type PeerPathKind,
  type PeerPathState,
} from '@trellis/proto';
import { realTimers, type Timers } from '../control/timers';
import type { PeerPathStatus } from '../path';

/** A burst of path steps (a punch, a netmap) is reported together this long after its first change. */
export const PATH_STATE_SETTLE_MS = 250;
/** At most one report per this long: a flapping path costs the broker one message a second. */
export const PATH_STATE_MIN_INTERVAL_MS = 1_000;

export interface PathStateReporterDeps {
  /** The path machine's view of every peer now (PathDriver.status). */
  statuses(): readonly PeerPathStatus[];
  /** Sends on the control connection; dropped while disconnected (the next connect reports in full). */
  send(msg: PathStateMessage): void;
  timers?: Timers;
  settleMs?: number;
  minIntervalMs?: number;
}

/**
 * Tells the broker which path this device uses to each peer, for the dashboard's topology: only
 * what changed since the last report (coalesced, rate-limited), and everything after each connect
 * (`full`: the broker forgets what it had). Paths that are not in use (`none`) are listed only when
 * they replace one that was.
 */
export class PathStateReporter {
  /** What the broker was told: peer → `path relay`. */
  private sent = new Map<string, string>();
  private full = false;
  private timer: unknown = null;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private readonly timers: Timers;
  private readonly settleMs: number;
  private readonly minIntervalMs: number;

  constructor(private readonly deps: PathStateReporterDeps) {
    this.timers = deps.timers ?? realTimers;
    this.settleMs = deps.settleMs ?? PATH_STATE_SETTLE_MS;
    this.minIntervalMs = deps.minIntervalMs ?? PATH_STATE_MIN_INTERVAL_MS;
  }

  /** A path step ran: some peer's path may have changed. Cheap; the comparison waits for the flush. */
  changed(): void {
    if (this.timer !== null) return;
    const now = this.timers.now();
    const at = Math.max(now + this.settleMs, this.lastSentAt + this.minIntervalMs);
    this.timer = this.timers.setTimeout(() => this.flush(), at - now);
  }

  /** The control connection is up (again): the next report is a full one. */
  connected(): void {
    this.full = true;
    this.changed();
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private flush(): void {
    this.timer = null;
    const now = this.timers.now();
    const current = new Map<string, PeerPathState>();
    for (const s of this.deps.statuses()) {
      const state = stateOf(s, now);
      if (state.path !== 'none') current.set(s.peerId, state);
    }
    const changes: PeerPathState[] = [];
    if (this.full) changes.push(...current.values());
    else {
      for (const [id, st] of current) if (this.sent.get(id) !== signature(st)) changes.push(st);
      for (const id of this.sent.keys())
        if (!current.has(id)) changes.push({ peerId: id, path: 'none', forMs: 0 });
    }
    const full = this.full;
    this.full = false;
    this.sent = new Map([...current].map(([id, st]) => [id, signature(st)]));
    if (changes.length === 0 && !full) return;
    this.lastSentAt = now;
    // A full report with no path at all still says so: the broker drops what it had.
    for (let i = 0; i === 0 || i < changes.length; i += MAX_PATH_STATES) {
      const msg: PathStateMessage = { type: 'path-state', paths: changes.slice(i, i + MAX_PATH_STATES) };
      if (full && i === 0) msg.full = true;
      this.deps.send(msg);
    }
  }
}

/** The path machine's status as the topology shows it: a relay or direct path, or one being tried. */
function stateOf(s: PeerPathStatus, now: number): PeerPathState {
  let path: PeerPathKind = 'none';
  if (s.path === 'direct-lan' || s.path === 'direct-internet') path = 'direct';
  else if (s.path === 'relay') path = 'relayed';
  else if (s.phase === 'scheduled' || s.phase === 'probing') path = 'connecting';
  const forMs = Math.min(MAX_PATH_AGE_MS, Math.max(0, Math.round(now - s.since)));
  const state: PeerPathState = { peerId: s.peerId, path, forMs };
  if (path === 'relayed' && s.relayName) state.relay = s.relayName;
  return state;
}

function signature(s: PeerPathState): string {
  return `${s.path} ${s.relay ?? ''}`;
}
