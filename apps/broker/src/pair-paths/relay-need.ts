import { type PunchSide, punchable } from './punch-plan';

/** One device of a pair as the relay policy sees it. */
export interface RelaySideView extends PunchSide {
  /** How long its control connection has been up (ms). */
  onlineForMs: number;
  /** No UDP from it reached the reflectors since it came online (see PairPathCore). */
  udpUnseen: boolean;
}

/**
 * Whether a pair goes through a relay before any punch, because a direct path cannot work: both
 * NATs map per destination (and nothing else makes them punchable), or a side's network blocks UDP
 * (no UDP seen `udpWaitMs` after it came online; before that its address may be on the way).
 */
export function needsRelayNow(
  a: RelaySideView,
  b: RelaySideView,
  opts: { reflectorsRun: boolean; udpWaitMs: number },
): boolean {
  const blocked = [a, b].some((side) => side.udpUnseen && side.onlineForMs >= opts.udpWaitMs);
  if (blocked) return true;
  if (punchable(a, b, opts.reflectorsRun)) return false;
  return a.mappingType === 'endpoint-dependent' && b.mappingType === 'endpoint-dependent';
}
