/** Why a packet was dropped without an answer. Every drop is silent and counted under one reason. */
export const DROP_REASONS = [
  'oversize',
  'malformed',
  'rate-limited',
  'bad-mac1',
  'decrypt-failed',
  'unknown-key',
  'enrollment-check-failed',
  'stale-timestamp',
  'unknown-session',
  'bad-keepalive',
  'replayed-keepalive',
  'internal-error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** A snapshot the broker can map to Prometheus counters (all monotonically increasing). */
export interface ReflectorCounters {
  /** Datagrams received, whatever became of them. */
  packets: number;
  /** Valid initiations from enrolled keys, answered with a response. */
  handshakes: number;
  /** Authenticated keepalives on a session we completed. */
  keepalives: number;
  /** `observed` events emitted. */
  observations: number;
  /** Socket errors: replies that could not be sent, ICMP errors reported on the socket. */
  socketErrors: number;
  /** Exceptions thrown by `observed` listeners (caught so the service keeps running). */
  listenerErrors: number;
  dropped: Record<DropReason, number>;
}

export function emptyCounters(): ReflectorCounters {
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  return {
    packets: 0,
    handshakes: 0,
    keepalives: 0,
    observations: 0,
    socketErrors: 0,
    listenerErrors: 0,
    dropped,
  };
}

export function copyCounters(c: ReflectorCounters): ReflectorCounters {
  return { ...c, dropped: { ...c.dropped } };
}
