import { TIMESTAMP_LENGTH } from './constants';

// TAI64N (https://cr.yp.to/libtai/tai64.html): 8 bytes big-endian 2^62 + TAI seconds, then 4 bytes
// big-endian nanoseconds. WireGuard only needs the value to grow monotonically per initiator.

/** 2^62 plus the 10 s TAI-UTC offset of 1972, as WireGuard implementations label UTC seconds. */
const TAI64_BASE = 0x400000000000000an;
/** Sub-second precision is rounded down to ~16 ms so the stamp leaks less timing (as WireGuard does). */
const NANOSECOND_WHITENER = 0xffffff;

/** Encodes a wall-clock time (milliseconds since the epoch, fractional allowed) as TAI64N. */
export function tai64n(epochMilliseconds: number): Uint8Array {
  const seconds = Math.floor(epochMilliseconds / 1000);
  const nanos = Math.floor((epochMilliseconds - seconds * 1000) * 1e6);
  const out = new Uint8Array(TIMESTAMP_LENGTH);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, TAI64_BASE + BigInt(seconds));
  view.setUint32(8, (nanos & ~NANOSECOND_WHITENER) >>> 0);
  return out;
}

/** Milliseconds since the epoch for a TAI64N stamp (for display and freshness checks). */
export function tai64nToEpochMilliseconds(stamp: Uint8Array): number {
  if (stamp.length !== TIMESTAMP_LENGTH) throw new Error('TAI64N stamp must be 12 bytes');
  const view = new DataView(stamp.buffer, stamp.byteOffset, stamp.byteLength);
  const seconds = Number(view.getBigUint64(0) - TAI64_BASE);
  return seconds * 1000 + Math.floor(view.getUint32(8) / 1e6);
}

/** Byte-wise comparison; big-endian encoding makes it the chronological order. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TIMESTAMP_LENGTH; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
