import type { TokenBucketRate } from '@trellis/reflector';

export const KERNEL_FORWARDING_MODES = ['auto', 'on', 'off'] as const;
/** on: the kernel path or nothing; auto: when this process may (CAP_NET_ADMIN); off: never. */
export type KernelForwardingMode = (typeof KERNEL_FORWARDING_MODES)[number];

/** A UDP side of an allocation as the kernel path needs it (IPv4 only). */
export interface UdpSide {
  address: string;
  port: number;
}

/** A pair whose two sides are bound over UDP, handed to the kernel. */
export interface KernelPair {
  allocationId: string;
  accountId: string;
  /** The relay port both sides send to. */
  port: number;
  a: UdpSide;
  b: UdpSide;
}

/** What the kernel did for one allocation since it was first handed over (kept across rebinds). */
export interface KernelCounters {
  packets: number;
  bytes: number;
  /** Over the allocation's or the account's packet budget. */
  rateLimited: number;
}

/** The packet budgets the kernel enforces, as the process does (AllocationLimits, accounts). */
export interface KernelBudgets {
  allocation: TokenBucketRate;
  account: TokenBucketRate;
}

/**
 * Forwarding of bound pairs by the kernel instead of the relay process: Node handles one datagram
 * per system call, which caps a relay at tens of thousands of packets per second. Only packets
 * from the two bound sources to the allocation's port are forwarded this way; everything else
 * (handshakes from a new address, junk) still reaches the process, so bindings stay mac1-checked.
 */
export interface KernelPath {
  /** Forward between the pair's sides (replaces what the allocation had). */
  forward(pair: KernelPair): Promise<void>;
  /** Back to the process for this allocation. */
  stop(allocationId: string): Promise<void>;
  /** Per allocation handed over and not stopped. */
  counters(): Promise<Map<string, KernelCounters>>;
  close(): Promise<void>;
}
