import { EventEmitter } from 'node:events';
import type { HeldAllocation, PortRange, RelayAllocation, RelayBinding } from '@trellis/proto';
import type { TokenBucketRate } from '@trellis/reflector';
import { AccountBuckets } from './allocation/account-buckets';
import type { AllocationLimits } from './allocation/allocation-core';
import { type DropCounts, emptyDropCounts } from './allocation/drop-reason';
import type { KernelPath } from './kernel/kernel-path';
import { bindUdp } from './udp/bind-udp';
import { PortPool } from './udp/port-pool';
import { type PacketChannel, RelayedAllocation } from './udp/relayed-allocation';

export interface RelayOptions {
  /** UDP listen host ('0.0.0.0', '::' or one address). */
  host: string;
  ports: PortRange;
  now?: () => number;
  limits?: AllocationLimits;
  accountPackets?: TokenBucketRate;
  /** How often idle allocations are looked for. */
  idleCheckMs?: number;
  /** Bound UDP pairs are handed to it; their traffic no longer passes here. */
  kernel?: KernelPath;
  onKernelError?: (err: Error) => void;
  /** How often the kernel's counters are read (activity for idle expiry, and metrics). */
  kernelActivityMs?: number;
}

export const DEFAULT_ACCOUNT_PACKETS: TokenBucketRate = { capacity: 400_000, refillPerSecond: 400_000 };
/** Ports tried before an allocation without a requested port fails. */
const MAX_PORT_ATTEMPTS = 32;

export interface RelayEvents {
  bound: [allocationId: string, publicKey: string, binding: RelayBinding];
  expired: [allocationId: string];
}

/** Everything the relay forwarded and dropped since it started, closed allocations included. */
export interface RelayTotals {
  udp: { packets: number; bytes: number };
  tcp: { packets: number; bytes: number };
  drops: DropCounts;
  binds: number;
}

/** The set of allocations: opens each on its UDP port, closes them, expires idle ones. */
export class Relay extends EventEmitter<RelayEvents> {
  private readonly allocations = new Map<string, RelayedAllocation>();
  private readonly opening = new Map<string, Promise<number>>();
  private readonly pool: PortPool;
  private readonly accounts: AccountBuckets;
  private readonly now: () => number;
  private readonly closedTotals: RelayTotals = emptyTotals();
  private readonly idleTimer: NodeJS.Timeout;
  private readonly kernelTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RelayOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.pool = new PortPool(options.ports);
    this.accounts = new AccountBuckets(options.accountPackets ?? DEFAULT_ACCOUNT_PACKETS, this.now);
    this.idleTimer = setInterval(() => this.expireIdle(), options.idleCheckMs ?? 1000);
    this.idleTimer.unref();
    if (options.kernel) {
      this.kernelTimer = setInterval(() => void this.readKernelActivity(), options.kernelActivityMs ?? 5_000);
      this.kernelTimer.unref();
    }
  }

  /** Kernel-forwarded traffic: counted like the process's, and keeps those allocations from idling. */
  private async readKernelActivity(): Promise<void> {
    const counters = await this.options.kernel!.counters().catch((err: Error) => {
      this.options.onKernelError?.(err);
      return undefined;
    });
    if (!counters) return;
    const now = this.now();
    for (const [id, allocation] of this.allocations) allocation.absorbKernelCounters(counters.get(id), now);
  }

  get size(): number {
    return this.allocations.size;
  }

  get(allocationId: string): RelayedAllocation | undefined {
    return this.allocations.get(allocationId);
  }

  ids(): string[] {
    return [...this.allocations.keys()];
  }

  /** Opens the allocation (idempotent: an open one keeps its port and bindings); resolves its port. */
  open(spec: RelayAllocation): Promise<number> {
    const existing = this.allocations.get(spec.allocationId);
    if (existing) return Promise.resolve(existing.port);
    const pending = this.opening.get(spec.allocationId);
    if (pending) return pending;
    const opening = this.openSocket(spec).finally(() => this.opening.delete(spec.allocationId));
    this.opening.set(spec.allocationId, opening);
    return opening;
  }

  private async openSocket(spec: RelayAllocation): Promise<number> {
    const socket = await this.bindPort(spec.port);
    const allocation = new RelayedAllocation({
      spec,
      socket,
      now: this.now,
      limits: this.options.limits,
      accountBucket: this.accounts.acquire(spec.accountId),
      onBound: (publicKey, binding) => this.emit('bound', spec.allocationId, publicKey, binding),
      ...(this.options.kernel ? { kernel: this.options.kernel } : {}),
      ...(this.options.onKernelError ? { onKernelError: this.options.onKernelError } : {}),
    });
    this.pool.hold(allocation.port);
    this.allocations.set(spec.allocationId, allocation);
    return allocation.port;
  }

  private async bindPort(requested: number | null) {
    if (requested !== null) return bindUdp(this.options.host, requested);
    let lastError: unknown = new Error('no free port in the relay range');
    for (const port of this.pool.candidates(MAX_PORT_ATTEMPTS)) {
      try {
        return await bindUdp(this.options.host, port);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  async close(allocationId: string): Promise<void> {
    await this.opening.get(allocationId)?.catch(() => undefined);
    const allocation = this.allocations.get(allocationId);
    if (!allocation) return;
    this.allocations.delete(allocationId);
    this.pool.release(allocation.port);
    this.accounts.release(allocation.accountId);
    addTotals(this.closedTotals, allocation);
    await allocation.close();
  }

  /** Makes the open set equal to `wanted`: closes the others, opens the missing ones. */
  async sync(wanted: RelayAllocation[]): Promise<Array<{ allocationId: string; error: unknown }>> {
    const keep = new Set(wanted.map((a) => a.allocationId));
    await Promise.all(
      this.ids()
        .filter((id) => !keep.has(id))
        .map((id) => this.close(id)),
    );
    const failures: Array<{ allocationId: string; error: unknown }> = [];
    await Promise.all(
      wanted.map((spec) =>
        this.open(spec).catch((error: unknown) => failures.push({ allocationId: spec.allocationId, error })),
      ),
    );
    return failures;
  }

  /** Attaches a TCP-fallback channel; undefined when the allocation is unknown. */
  attachChannel(
    allocationId: string,
    channelId: string,
    channel: PacketChannel,
  ): { receive: (packet: Uint8Array) => void; detach: () => void } | undefined {
    const allocation = this.allocations.get(allocationId);
    if (!allocation) return undefined;
    return {
      receive: allocation.attachChannel(channelId, channel),
      detach: () => allocation.detachChannel(channelId),
    };
  }

  bindings(): Array<{ allocationId: string; publicKey: string; binding: RelayBinding }> {
    const out = [];
    for (const [allocationId, allocation] of this.allocations) {
      for (const b of allocation.bindings()) out.push({ allocationId, ...b });
    }
    return out;
  }

  /** Every open allocation with its port and bindings: what a broker connected to adopts. */
  held(): HeldAllocation[] {
    return [...this.allocations.values()].map((a) => a.held());
  }

  totals(): RelayTotals {
    const totals = emptyTotals();
    addTotals(totals, this.closedTotals);
    for (const allocation of this.allocations.values()) addTotals(totals, allocation);
    return totals;
  }

  private expireIdle(): void {
    const now = this.now();
    for (const [id, allocation] of this.allocations) {
      if (!allocation.core.isIdle(now)) continue;
      void this.close(id);
      this.emit('expired', id);
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.idleTimer);
    if (this.kernelTimer) clearInterval(this.kernelTimer);
    await Promise.all(this.ids().map((id) => this.close(id)));
  }
}

function emptyTotals(): RelayTotals {
  return { udp: { packets: 0, bytes: 0 }, tcp: { packets: 0, bytes: 0 }, drops: emptyDropCounts(), binds: 0 };
}

function addTotals(into: RelayTotals, from: RelayTotals | RelayedAllocation): void {
  const source: RelayTotals =
    from instanceof RelayedAllocation
      ? {
          udp: from.core.forwarded.udp,
          tcp: from.core.forwarded.tcp,
          drops: from.core.drops,
          binds: from.core.binds,
        }
      : from;
  for (const t of ['udp', 'tcp'] as const) {
    into[t].packets += source[t].packets;
    into[t].bytes += source[t].bytes;
  }
  for (const [reason, n] of Object.entries(source.drops)) into.drops[reason as keyof DropCounts] += n;
  into.binds += source.binds;
}
