import {
  autoApproves,
  type ClassAccess,
  CompiledPolicy,
  type PolicyDevice,
  parsePolicy,
  RuleChange,
} from '@trellis/policy';
import type { DeviceState } from '@trellis/proto';
import {
  type NetmapPolicy,
  type PeerRelation,
  servedRoutes,
  type UnchangedTest,
} from '../domain/netmap-policy';

export function policyDeviceOf(state: DeviceState): PolicyDevice {
  const routes = servedRoutes(state);
  return {
    id: state.id,
    name: state.name,
    address: state.address,
    tags: state.tags ?? [],
    ...(state.user !== undefined ? { user: state.user } : {}),
    ...(routes.length > 0 ? { routes } : {}),
  };
}

/**
 * One version of an account's policy applied to its devices, as the netmap asks for it: classes
 * and their relations from the compiled policy. A PeerRelation is made once per distinct (in, out)
 * pair of relations and shared by every pair of classes that has it.
 */
export class AccountPolicy implements NetmapPolicy {
  /** `in out routesIn routesOut` relation ids -> the shared PeerRelation. */
  private readonly shared = new Map<string, PeerRelation>();

  private constructor(
    readonly version: number,
    private readonly compiled: CompiledPolicy | null,
  ) {}

  /**
   * The policy `text` over `devices`. A stored text that does not parse (written by a newer
   * broker, or damaged) denies everything: devices see nobody rather than everybody. `replaces`:
   * the policy in force, whose relations are taken over where no changed rule touches them.
   */
  static build(
    version: number,
    text: string,
    devices: Iterable<DeviceState>,
    replaces?: NetmapPolicy,
  ): AccountPolicy {
    const parsed = parsePolicy(text);
    if (!parsed.ok) return new AccountPolicy(version, null);
    const base = replaces instanceof AccountPolicy ? (replaces.compiled ?? undefined) : undefined;
    const compiled = new CompiledPolicy(parsed.policy, [...devices].map(policyDeviceOf), base);
    return new AccountPolicy(version, compiled);
  }

  /** Whether the text failed to parse and everything is denied. */
  get failedClosed(): boolean {
    return this.compiled === null;
  }

  classOf(id: string): number | undefined {
    return this.compiled ? this.compiled.classOf(id) : 0;
  }

  relation(viewer: number, peer: number): PeerRelation | null {
    const access = this.compiled?.classAccess(viewer, peer);
    return access ? this.peerRelation(access) : null;
  }

  private peerRelation(a: ClassAccess): PeerRelation {
    const id = `${a.in.id} ${a.out.id} ${a.routesIn.id} ${a.routesOut.id}`;
    let rel = this.shared.get(id);
    if (!rel) {
      rel = {
        in: a.in.rules,
        out: a.out.rules,
        ...(a.routesIn.list.length > 0 ? { routesIn: [...a.routesIn.list] } : {}),
        ...(a.routesOut.list.length > 0 ? { routesOut: [...a.routesOut.list] } : {}),
        key: `${a.in.json}|${a.out.json}|${a.routesIn.json}|${a.routesOut.json}`,
      };
      this.shared.set(id, rel);
    }
    return rel;
  }

  /** Whether the policy's autoApprovers approve `prefix` for the device (false: it did not parse). */
  autoApproves(state: DeviceState, prefix: string): boolean {
    return this.compiled !== null && autoApproves(this.compiled.policy, policyDeviceOf(state), prefix);
  }

  /**
   * Where only rules differ from `before`: pairs that no added or removed rule touches, in either
   * direction, are seen the same (see RuleChange).
   */
  unchangedSince(before: NetmapPolicy): UnchangedTest | undefined {
    const now = this.compiled;
    const was = before instanceof AccountPolicy ? before.compiled : null;
    const change = now && was ? RuleChange.between(was.policy, now.policy) : undefined;
    if (!now || !was || !change) return undefined;
    return (viewerWas, peerWas, viewerIs, peerIs) => {
      const [ov, op] = [was.classView(viewerWas), was.classView(peerWas)];
      const [nv, np] = [now.classView(viewerIs), now.classView(peerIs)];
      if (!ov || !op || !nv || !np) return false;
      return !change.touches(ov, op, nv, np) && !change.touches(op, ov, np, nv);
    };
  }

  /** Every relation between the current classes, in steps (see CompiledPolicy.computeRelations). */
  *computeRelations(): Generator<void, void, void> {
    if (this.compiled) yield* this.compiled.computeRelations();
  }

  /** Brings the devices up to `states` (built from an earlier list, while relations were computed). */
  sync(states: Iterable<DeviceState>): void {
    const compiled = this.compiled;
    if (!compiled) return;
    const present = new Set<string>();
    for (const state of states) {
      present.add(state.id);
      compiled.upsertDevice(policyDeviceOf(state));
    }
    for (const d of [...compiled.allDevices()]) if (!present.has(d.id)) compiled.removeDevice(d.id);
  }

  upsert(state: DeviceState): void {
    this.compiled?.upsertDevice(policyDeviceOf(state));
  }

  remove(id: string): void {
    this.compiled?.removeDevice(id);
  }
}
