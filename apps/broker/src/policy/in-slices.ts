import { setImmediate as nextTurn } from 'node:timers/promises';

/** Longest stretch of work before the event loop gets a turn (heartbeats, other accounts). */
export const SLICE_MS = 20;

/**
 * For work nobody waits on (a count for a reply): shorter slices, so work that devices wait on,
 * interleaved with it on the same loop, gets most of the CPU meanwhile.
 */
export const BACKGROUND_SLICE_MS = 4;

/**
 * Runs `steps` to the end, giving the event loop a turn whenever a stretch of steps has taken
 * `sliceMs`: a large policy's relations take seconds to compute, and nothing else may wait that long.
 */
export async function inSlices(
  steps: Iterator<unknown>,
  sliceMs = SLICE_MS,
  now: () => number = () => performance.now(),
): Promise<void> {
  let started = now();
  while (!steps.next().done) {
    if (now() - started < sliceMs) continue;
    await nextTurn();
    started = now();
  }
}
