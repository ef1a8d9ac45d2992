import type { Arrival } from './messages';

/** One change: per expected device the ms from the admin call to its frame, and what went wrong. */
export interface ChangeSample {
  kind: 'rule' | 'tag';
  expected: number;
  times: number[];
  missing: number;
  /** Expected devices that got no frame because the broker closed their connection first. */
  droppedInstead: number;
  /** Expected devices whose first frame was of the wrong kind (or a delta not naming the device). */
  wrong: number;
  /** Devices not expected to hear anything that got a frame within the settle window. */
  strays: number;
  strayTypes: Record<string, number>;
  /** How long the admin call itself took (the broker's commit), ms. */
  callMs: number;
  /** What the broker reported changed (policy.apply's devicesChanged). */
  brokerChanged?: number;
  brokerCpuMs: number;
  /** Established connections the broker closed during the change, by close code (4410: heartbeat timeout). */
  dropped: Record<string, number>;
  /** The longest the broker's event loop was blocked during the change. */
  loopMaxMs: number;
}

export function judge(
  kind: ChangeSample['kind'],
  expected: Map<number, 'netmap' | 'delta'>,
  arrivals: Arrival[],
  start: number,
  callMs: number,
  brokerChanged: number | undefined,
  brokerCpuMs: number,
): Omit<ChangeSample, 'dropped' | 'loopMaxMs'> {
  const times: number[] = [];
  let missing = 0;
  let droppedInstead = 0;
  let wrong = 0;
  let strays = 0;
  const strayTypes: Record<string, number> = {};
  arrivals.forEach((a, i) => {
    const want = expected.get(i);
    if (want === undefined) {
      if (a.frames > 0) {
        strays++;
        strayTypes[a.type ?? '?'] = (strayTypes[a.type ?? '?'] ?? 0) + 1;
      }
      return;
    }
    if (a.at === undefined) {
      if (a.dropped) droppedInstead++;
      else missing++;
      return;
    }
    times.push(a.at - start);
    if (a.type !== want || (want === 'delta' && a.mentions === false)) wrong++;
  });
  return {
    kind,
    expected: expected.size,
    times,
    missing,
    droppedInstead,
    wrong,
    strays,
    strayTypes,
    callMs,
    ...(brokerChanged !== undefined ? { brokerChanged } : {}),
    brokerCpuMs,
  };
}

export function printSample(n: number, s: ChangeSample, what: string): void {
  const sorted = [...s.times].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  console.log(
    `[${n}] ${what}: ${s.times.length}/${s.expected} got it, p50/p99 ${at(0.5).toFixed(0)}/${at(0.99).toFixed(0)} ms, ` +
      `call ${s.callMs.toFixed(0)} ms, broker CPU ${s.brokerCpuMs.toFixed(0)} ms, event loop blocked up to ` +
      `${s.loopMaxMs.toFixed(0)} ms` +
      (s.brokerChanged !== undefined ? `, broker says ${s.brokerChanged} changed` : '') +
      (s.missing + s.wrong + s.strays + s.droppedInstead > 0
        ? `; ${s.missing} missing, ${s.droppedInstead} dropped instead, ${s.wrong} wrong frame, ` +
          `${s.strays} strays ${JSON.stringify(s.strayTypes)}`
        : '') +
      (Object.keys(s.dropped).length > 0
        ? `; connections closed by the broker: ${JSON.stringify(s.dropped)}`
        : ''),
  );
}
