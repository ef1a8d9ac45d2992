import { CompiledPolicy, type PolicyDevice, parsePolicy } from '@trellis/policy';
import type { DeviceState } from '@trellis/proto';
import type { NetmapPolicy, PeerRelation } from '../domain/netmap-policy';

/** More memoised class relations than this and the memo starts over (classes come and go). */
const MAX_MEMO = 200_000;

export function policyDeviceOf(state: DeviceState): PolicyDevice {
  return {
    id: state.id,
    name: state.name,
    address: state.address,
    tags: state.tags ?? [],
    ...(state.user !== undefined ? { user: state.user } : {}),
  };
}

/**
 * One version of an account's policy applied to its devices, as the netmap asks for it: classes
 * from the compiled policy, and the relation between two classes from one device of each.
 */
export class AccountPolicy implements NetmapPolicy {
  private memo = new Map<string, PeerRelation | null>();

  private constructor(
    readonly version: number,
    private readonly compiled: CompiledPolicy | null,
  ) {}

  /**
   * The policy `text` over `devices`. A stored text that does not parse (written by a newer
   * broker, or damaged) denies everything: devices see nobody rather than everybody.
   */
  static build(version: number, text: string, devices: Iterable<DeviceState>): AccountPolicy {
    const parsed = parsePolicy(text);
    if (!parsed.ok) return new AccountPolicy(version, null);
    return new AccountPolicy(version, new CompiledPolicy(parsed.policy, [...devices].map(policyDeviceOf)));
  }

  /** Whether the text failed to parse and everything is denied. */
  get failedClosed(): boolean {
    return this.compiled === null;
  }

  classOf(id: string): number | undefined {
    return this.compiled ? this.compiled.classOf(id) : 0;
  }

  relation(viewer: number, peer: number): PeerRelation | null {
    const compiled = this.compiled;
    if (!compiled) return null;
    const key = `${viewer}/${peer}`;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    const a = first(compiled.membersOf(viewer));
    const b = first(compiled.membersOf(peer), a);
    // A class of one device has no other member to see (yet): not an answer to keep.
    if (a === undefined || b === undefined) return null;
    const rel = compiled.access(a, b);
    if (this.memo.size >= MAX_MEMO) this.memo = new Map();
    this.memo.set(key, rel);
    return rel;
  }

  upsert(state: DeviceState): void {
    this.compiled?.upsertDevice(policyDeviceOf(state));
  }

  remove(id: string): void {
    this.compiled?.removeDevice(id);
  }
}

function first(ids: ReadonlySet<string>, not?: string): string | undefined {
  for (const id of ids) if (id !== not) return id;
  return undefined;
}
