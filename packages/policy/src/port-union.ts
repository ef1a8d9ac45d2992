import type { PortSpan } from '@trellis/proto';
import { EVERYTHING, isEverything, type PortSet } from './ports';

/** One protocol's spans of every set, as ranges of elementary segments. */
class SegmentedSpans {
  /** Segment k holds ports bounds[k] .. bounds[k + 1] - 1. */
  private readonly bounds: number[];
  /** Per set: [first segment, end segment) pairs. */
  private readonly ranges: Int32Array[];
  /** Coverage changes per segment, all zero between unions. */
  private readonly delta: Int32Array;

  constructor(spansOf: readonly (readonly PortSpan[])[]) {
    const points = new Set<number>();
    for (const spans of spansOf) {
      for (const [a, b] of spans) {
        points.add(a);
        points.add(b + 1);
      }
    }
    this.bounds = [...points].sort((x, y) => x - y);
    const at = new Map(this.bounds.map((p, k) => [p, k]));
    this.ranges = spansOf.map((spans) =>
      Int32Array.from(spans.flatMap(([a, b]) => [at.get(a)!, at.get(b + 1)!])),
    );
    this.delta = new Int32Array(this.bounds.length + 1);
  }

  /** The merged, sorted spans the sets `members` cover together. */
  union(members: readonly number[]): PortSpan[] {
    // Only the segments where coverage changes are visited, in order.
    const touched: number[] = [];
    for (const m of members) {
      const r = this.ranges[m]!;
      for (let i = 0; i < r.length; i += 2) {
        const [from, to] = [r[i]!, r[i + 1]!];
        if (this.delta[from] === 0) touched.push(from);
        this.delta[from]!++;
        if (this.delta[to] === 0) touched.push(to);
        this.delta[to]!--;
      }
    }
    touched.sort((x, y) => x - y);
    const out: PortSpan[] = [];
    let depth = 0;
    let start = -1;
    for (const k of touched) {
      depth += this.delta[k]!;
      this.delta[k] = 0;
      if (depth > 0 && start < 0) start = this.bounds[k]!;
      else if (depth === 0 && start >= 0) {
        out.push([start, this.bounds[k]! - 1]);
        start = -1;
      }
    }
    return out;
  }
}

/**
 * Unions of members of a fixed family of port sets (a policy's rules' ports), by a sweep over the
 * segments their span ends cut the ports into: only the segments where coverage changes are
 * visited, and spans that touch come out joined.
 */
export class PortSetFamily {
  private readonly tcp: SegmentedSpans;
  private readonly udp: SegmentedSpans;

  constructor(private readonly sets: readonly PortSet[]) {
    this.tcp = new SegmentedSpans(sets.map((s) => s.tcp));
    this.udp = new SegmentedSpans(sets.map((s) => s.udp));
  }

  union(members: readonly number[]): PortSet {
    let other = false;
    let icmp = false;
    for (const m of members) {
      const s = this.sets[m]!;
      if (isEverything(s)) return EVERYTHING;
      other ||= s.other;
      icmp ||= s.icmp;
    }
    return { other, tcp: this.tcp.union(members), udp: this.udp.union(members), icmp };
  }
}
