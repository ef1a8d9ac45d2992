import type { PunchSide } from '../punch/punch-plan';
import { punchable } from '../punch/punch-plan';

/** One device of a pair as the relay policy sees it. */
export interface RelaySideView extends PunchSide {
  /** How long its control connection has been up (ms). */
  onlineForMs: number;
}

/**
 * With reflectors running every device that can send UDP gets a reflexive candidate soon after it
 * comes online; one still without it after a short wait sits on a network that blocks UDP.
 */
export function lacksUdp(side: PunchSide, reflectorsRun: boolean): boolean {
  return reflectorsRun && !side.candidates.some((c) => c.kind === 'reflexive');
}

/**
 * Whether a pair goes through a relay before any punch, because a direct path cannot work: both
 * NATs map per destination (and nothing else makes them punchable), or a side's network blocks UDP
 * (no reflexive candidate `udpWaitMs` after it came online; before that its address may be on the way).
 */
export function needsRelayNow(
  a: RelaySideView,
  b: RelaySideView,
  opts: { reflectorsRun: boolean; udpWaitMs: number },
): boolean {
  if (punchable(a, b, opts.reflectorsRun)) return false;
  if (a.mappingType === 'endpoint-dependent' && b.mappingType === 'endpoint-dependent') return true;
  return [a, b].some((side) => lacksUdp(side, opts.reflectorsRun) && side.onlineForMs >= opts.udpWaitMs);
}
