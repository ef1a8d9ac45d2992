import type { DeviceState } from '@trellis/proto';
import type { NetmapPolicy, PeerRelation, UnchangedTest } from './netmap-policy';

/**
 * What a composite class stands for: a base class of the account's policy and, for a device that
 * serves virtual devices, the sorted base classes of those. An orphan is a virtual device whose
 * gateway is not in the netmap: nobody sees it (it could not be reached).
 */
interface Composite {
  base: number;
  hosted: readonly number[] | null;
  orphan: boolean;
}

/** Lets a tunnel exist without opening anything on it (traffic to and from virtual devices). */
const TUNNEL_ONLY: PeerRelation = { in: [], out: [], key: '[]|[]|[]|[]' };

/**
 * The account's policy (the base) as the netmap applies it with virtual devices. A virtual device
 * is a device to the base; its gateway must also see whoever the virtual device talks with, since
 * their traffic goes through the gateway's tunnel. So a gateway's class carries its virtual
 * devices' base classes, and two classes relate as their base classes do or, when those do not but
 * some device or virtual device on one side relates to one on the other, with nothing opened.
 * Composite numbers are never reused: one always means the same base classes.
 */
export class HostingPolicy implements NetmapPolicy {
  /** Devices known here; `via` for virtual devices. */
  private readonly known = new Map<string, { via: string | undefined }>();
  /** Gateway id -> the virtual devices naming it (present or not). */
  private readonly hosted = new Map<string, Set<string>>();
  private readonly byKey = new Map<string, number>();
  private readonly composites: Composite[] = [];
  private readonly relations = new Map<string, PeerRelation | null>();

  /** `states`: the devices `base` was already fed (their hosting is learned, base is not fed again). */
  constructor(
    readonly base: NetmapPolicy,
    states: Iterable<DeviceState> = [],
  ) {
    for (const s of states) this.track(s);
  }

  classOf(id: string): number | undefined {
    const known = this.known.get(id);
    const base = this.base.classOf(id);
    if (!known || base === undefined) return undefined;
    if (known.via !== undefined) {
      const gateway = this.known.get(known.via);
      const orphan = gateway === undefined || gateway.via !== undefined;
      return orphan ? this.composite('o', { base, hosted: null, orphan }) : this.composite(`${base}`);
    }
    const vds = this.hosted.get(id);
    if (!vds) return this.composite(`${base}`);
    const set = new Set<number>();
    for (const v of vds) {
      const c = this.base.classOf(v);
      if (c !== undefined) set.add(c);
    }
    const hosted = [...set].sort((a, b) => a - b);
    return this.composite(`${base}:${hosted.join(',')}`, { base, hosted, orphan: false });
  }

  relation(viewer: number, peer: number): PeerRelation | null {
    const key = `${viewer} ${peer}`;
    let rel = this.relations.get(key);
    if (rel === undefined) {
      rel = this.compute(this.composites[viewer]!, this.composites[peer]!);
      this.relations.set(key, rel);
    }
    return rel;
  }

  upsert(state: DeviceState): void {
    this.base.upsert(state);
    this.track(state);
  }

  remove(id: string): void {
    this.base.remove(id);
    this.untrack(id);
    this.known.delete(id);
  }

  /** Pairs of plain classes are the base's to judge; any gateway class is compared again. */
  unchangedSince(before: NetmapPolicy): UnchangedTest | undefined {
    if (!(before instanceof HostingPolicy)) return undefined;
    const test = this.base.unchangedSince?.(before.base);
    if (!test) return undefined;
    const plain = (c: Composite | undefined) => c !== undefined && c.hosted === null && !c.orphan;
    return (vw, pw, vi, pi) => {
      const [a, b] = [before.composites[vw], before.composites[pw]];
      const [c, d] = [this.composites[vi], this.composites[pi]];
      if (!plain(a) || !plain(b) || !plain(c) || !plain(d)) return false;
      return test(a!.base, b!.base, c!.base, d!.base);
    };
  }

  /** The gateway `id` is known to be virtual device `id`'s (undefined: not a virtual device). */
  gatewayOf(id: string): string | undefined {
    return this.known.get(id)?.via;
  }

  /** The virtual devices that name `gatewayId` as their gateway. */
  hostedBy(gatewayId: string): ReadonlySet<string> {
    return this.hosted.get(gatewayId) ?? new Set();
  }

  /** Ids named as gateway by at least one virtual device. */
  gateways(): IterableIterator<string> {
    return this.hosted.keys();
  }

  private track(state: DeviceState): void {
    const known = this.known.get(state.id);
    if (known?.via !== state.via) {
      this.untrack(state.id);
      if (state.via !== undefined) {
        const set = this.hosted.get(state.via);
        if (set) set.add(state.id);
        else this.hosted.set(state.via, new Set([state.id]));
      }
    }
    this.known.set(state.id, { via: state.via });
  }

  private untrack(id: string): void {
    const via = this.known.get(id)?.via;
    if (via === undefined) return;
    const set = this.hosted.get(via);
    set?.delete(id);
    if (set?.size === 0) this.hosted.delete(via);
  }

  private composite(key: string, made?: Composite): number {
    let n = this.byKey.get(key);
    if (n === undefined) {
      n = this.composites.length;
      this.composites.push(made ?? { base: Number(key), hosted: null, orphan: false });
      this.byKey.set(key, n);
    }
    return n;
  }

  private compute(a: Composite, b: Composite): PeerRelation | null {
    if (a.orphan || b.orphan) return null;
    const direct = this.base.relation(a.base, b.base);
    if (direct !== null || (a.hosted === null && b.hosted === null)) return direct;
    const left = [a.base, ...(a.hosted ?? [])];
    const right = [b.base, ...(b.hosted ?? [])];
    for (const [i, x] of left.entries()) {
      for (const [j, y] of right.entries()) {
        if (i === 0 && j === 0) continue;
        if (this.base.relation(x, y) !== null) return TUNNEL_ONLY;
      }
    }
    return null;
  }
}
