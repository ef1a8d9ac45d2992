import type { InboundPolicy } from './policy';

/** Packets and bytes a firewall counted. */
export interface PacketCount {
  packets: number;
  bytes: number;
}

/** What a backend counted on the mesh interface since its ruleset was loaded. */
export interface FirewallCounters {
  /** Packets peers sent that the policy let in (replies to this device's own flows are not counted). */
  accepted?: PacketCount;
  dropped: PacketCount;
  /** Forbidden packets of a running TCP flow, answered with a reset. */
  rejected?: PacketCount;
}

export type ApplyMode = 'none' | 'incremental' | 'full';

export interface ApplyResult {
  /** Whether the kernel's rules changed. */
  changed: boolean;
  /** `none`: nothing to do; `incremental`: set elements only; `full`: the whole ruleset replaced. */
  mode: ApplyMode;
  /** Flows the change forbids whose state was taken away (connection tracking entries, pf states). */
  cut: number;
  /** Why cutting flows failed or was incomplete (e.g. the conntrack tool is missing); the rules still apply. */
  cutError?: string;
}

/** One operating system's kernel firewall, enforcing the inbound access policy on the mesh interface. */
export interface FirewallBackend {
  readonly name: string;
  /** Makes the kernel enforce `policy`; throws on an invalid policy or when the ruleset cannot be loaded. */
  apply(policy: InboundPolicy): Promise<ApplyResult>;
  /** Takes away everything this backend added, nothing else; no error when there is nothing. */
  remove(): Promise<void>;
  counters(): Promise<FirewallCounters>;
}

export const ZERO_COUNT: PacketCount = Object.freeze({ packets: 0, bytes: 0 });

/** Runs one backend operation at a time: the agent may apply while a previous apply still runs. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
