import type { Candidate, PathReportMessage, RelayPathMessage, RelayReleaseMessage } from '@trellis/proto';
import type { RelayAllocationRecord, RelayHandle } from '../relay/relay-directory';
import type { PunchSide } from './punch-plan';

/** One device as the pair-path core sees it: what the netmap says about reaching it. */
export interface PairDevice extends PunchSide {
  id: string;
  publicKey: string;
}

/** Inputs of the pair-path core. Each is applied at a `now` the driver passes with it. */
export type PairEvent =
  /** The device's control connection is up here; its agent starts from scratch. */
  | { kind: 'online'; device: PairDevice }
  /** The control connection closed: relayed pairs are kept for the offline grace. */
  | { kind: 'offline'; id: string }
  /** The device left the account. */
  | { kind: 'removed'; id: string }
  /** Its candidates or NAT type changed in the netmap. */
  | { kind: 'changed'; device: PairDevice }
  /** Every endpoint the reflectors saw the device at since it came online (never empty). */
  | { kind: 'reflexive-seen'; id: string; endpoints: readonly string[] }
  /** An agent wants a path to a peer (WireGuard has packets for it, or its path died). */
  | { kind: 'want'; from: string; peerId: string; relayed: boolean }
  /** An agent's `path` report about one of its peers. */
  | { kind: 'path-report'; from: string; report: PathReportMessage }
  /** A relay came up: pairs that found none to allocate on try again. */
  | { kind: 'relay-up' }
  /** A relay is gone for good: its pairs move. */
  | { kind: 'relay-down'; relayId: string }
  /** The relay closed an idle allocation. */
  | { kind: 'expired'; allocationId: string }
  /** The driver's answer to an `allocate` effect. */
  | {
      kind: 'allocated';
      pairKey: string;
      generation: number;
      record: RelayAllocationRecord;
      relay: RelayHandle;
    }
  /** No relay could allocate (`hadRelays`: some were tried, so retry later; else wait for one). */
  | { kind: 'allocation-failed'; pairKey: string; generation: number; hadRelays: boolean }
  /** Time passed: due timers fire. */
  | { kind: 'tick' };

/** A punch for both sides of a pair: the driver stamps the start time and sends the two messages. */
export interface PunchEffect {
  kind: 'punch';
  attemptId: string;
  a: PairDevice;
  b: PairDevice;
  /** `b`'s candidates for `a`, and `a`'s for `b`, best first. */
  forA: Candidate[];
  forB: Candidate[];
  deadlineMs: number;
  /** The side that leads, or null: key order. */
  leader: string | null;
}

/** Outputs of the pair-path core, in the order the driver must carry them out. */
export type PairEffect =
  | PunchEffect
  | { kind: 'send'; to: string; msg: RelayPathMessage | RelayReleaseMessage }
  /** Ask the relays (best first, none of `exclude`) for an allocation; answer with allocated/allocation-failed. */
  | {
      kind: 'allocate';
      pairKey: string;
      generation: number;
      a: PairDevice;
      b: PairDevice;
      exclude: readonly string[];
    }
  /** The relay frees the allocation. */
  | { kind: 'release'; allocationId: string }
  | { kind: 'log'; level: 'info' | 'warn'; msg: string; fields: Record<string, unknown> };

export interface PairPathOptions {
  /** The broker runs endpoint reflectors: every device that can send UDP gets a reflexive candidate. */
  reflectorsRun: boolean;
  /** Reflector observations reach the core (`reflexive-seen`): punches wait for fresh addresses. */
  tracksReflexive: boolean;
  /** Relays exist for this broker: pairs that cannot go direct are relayed. */
  relaysEnabled: boolean;
  /** Attempt ids (the driver uses random ones; tests count). */
  newAttemptId(): string;
  /** Wait this long after a change before punching, so bursts send one punch. */
  settleMs: number;
  /** Per-candidate deadline the agents get. */
  deadlineMs: number;
  /** How long a pair waits for fresh reflexive addresses before giving up on punching. */
  freshWaitMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** How long a device may be online without UDP seen before its network counts as UDP-blocked. */
  udpWaitMs: number;
  /** Both agents must report direct for this long before a relay is released. */
  directGraceMs: number;
  /** A device offline this long loses its relayed pairs (a quicker reconnect keeps them). */
  offlineGraceMs: number;
  /** When relays were tried and none could allocate, try again after this long. */
  retryMs: number;
}

export const DEFAULT_PAIR_PATH_OPTIONS = {
  settleMs: 25,
  deadlineMs: 1_500,
  freshWaitMs: 2_000,
  backoffInitialMs: 5_000,
  backoffMaxMs: 300_000,
  udpWaitMs: 1_500,
  directGraceMs: 10_000,
  offlineGraceMs: 15_000,
  retryMs: 10_000,
} as const;

/** One key for an unordered pair of devices. */
export function pairKey(x: string, y: string): string {
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}
