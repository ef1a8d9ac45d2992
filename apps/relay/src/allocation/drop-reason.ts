/** Why the relay dropped a packet; each is a label of the drops metric. */
export const DROP_REASONS = [
  /** Not a WireGuard message of a known type and exact length. */
  'malformed',
  /** Over the allocation's or the account's packet budget, or the handshake budget. */
  'rate-limited',
  /** A non-handshake packet from an address no side is bound to. */
  'unbound-source',
  /** From a bound side, but the other side is not bound (yet, or its WebSocket closed). */
  'peer-unbound',
  /** A handshake whose mac1 matches neither side's public key. */
  'bad-mac1',
  /** A handshake identical to a recent one, from another address: never (re)binds. */
  'replay',
  /** A valid handshake that would move a bound side, over that side's rebind budget. */
  'rebind-limited',
  /** A handshake claiming to come from side X, sent from the address side Y is bound to. */
  'side-conflict',
  /** The socket or WebSocket refused to send. */
  'send-failed',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type DropCounts = Record<DropReason, number>;

export function emptyDropCounts(): DropCounts {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as DropCounts;
}
