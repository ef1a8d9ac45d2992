import type { Socket } from 'node:dgram';
import type { HeldAllocation, RelayAllocation, RelayBinding } from '@trellis/proto';
import { formatEndpoint, parseEndpoint } from '@trellis/proto';
import type { TokenBucket } from '@trellis/reflector';
import { normalizeSource } from '@trellis/reflector';
import { AllocationCore, type AllocationLimits, type SideBinding } from '../allocation/allocation-core';
import type { KernelCounters, KernelPath } from '../kernel/kernel-path';

/** A TCP-fallback connection as the allocation sees it: one WireGuard packet per send. */
export interface PacketChannel {
  /** False when the packet could not be queued (closed, or too much already buffered). */
  send(packet: Uint8Array): boolean;
  /** The allocation is closing. */
  close(): void;
}

export interface RelayedAllocationOptions {
  spec: RelayAllocation;
  socket: Socket;
  now: () => number;
  limits?: AllocationLimits;
  accountBucket?: TokenBucket;
  onBound: (publicKey: string, binding: RelayBinding) => void;
  /** Bound UDP pairs are handed to the kernel (see KernelPath). */
  kernel?: KernelPath;
  onKernelError?: (err: Error) => void;
}

/**
 * One allocation on its UDP socket (and any TCP-fallback channels): feeds every packet to the
 * AllocationCore and sends it where the core says. The per-packet path does one classification,
 * one clock read, two string compares per bound side and one send.
 */
export class RelayedAllocation {
  readonly id: string;
  readonly accountId: string;
  readonly port: number;
  readonly core: AllocationCore;
  private readonly socket: Socket;
  private readonly channels = new Map<string, PacketChannel>();
  private readonly afterSend: (err: Error | null) => void;
  private closed = false;
  private kernelSeen: KernelCounters = { packets: 0, bytes: 0, rateLimited: 0 };

  constructor(private readonly options: RelayedAllocationOptions) {
    const { spec, socket } = options;
    this.id = spec.allocationId;
    this.accountId = spec.accountId;
    this.socket = socket;
    this.port = socket.address().port;
    const publicKeys = [spec.sides[0].publicKey, spec.sides[1].publicKey] as const;
    const dualStack = socket.address().family === 'IPv6';
    this.core = new AllocationCore({
      publicKeys,
      idleTimeoutMs: spec.idleTimeoutMs,
      now: options.now,
      limits: options.limits,
      accountBucket: options.accountBucket,
      initialBindings: [
        restoredBinding(spec.sides[0].bound, dualStack),
        restoredBinding(spec.sides[1].bound, dualStack),
      ],
      onBound: (side, binding) => {
        options.onBound(publicKeys[side], toProtoBinding(binding));
        this.syncKernel();
      },
    });
    this.afterSend = (err) => {
      if (err) this.core.noteSendFailed();
    };
    socket.on('message', (packet, rinfo) =>
      this.route(this.core.receive('udp', rinfo.address, rinfo.port, packet), packet),
    );
    // Once bound, a socket error concerns one datagram (e.g. ICMP unreachable): keep serving.
    socket.on('error', () => this.core.noteSendFailed());
    this.syncKernel();
  }

  /** Both sides bound over UDP: the kernel forwards between them (again after every rebind). */
  private syncKernel(): void {
    const kernel = this.options.kernel;
    if (!kernel || this.closed) return;
    const a = this.core.binding(0);
    const b = this.core.binding(1);
    const job =
      a?.transport === 'udp' && b?.transport === 'udp'
        ? kernel.forward({
            allocationId: this.id,
            accountId: this.accountId,
            port: this.port,
            // A dual-stack socket's view of an IPv4 source, as the kernel sees it.
            a: normalizeSource(a),
            b: normalizeSource(b),
          })
        : kernel.stop(this.id);
    job.catch((err: Error) => this.options.onKernelError?.(err));
  }

  /** Takes in the kernel's counters for this allocation (undefined: it forwards nothing for it). */
  absorbKernelCounters(counters: KernelCounters | undefined, now: number): void {
    const seen = this.kernelSeen;
    if (!counters) {
      this.kernelSeen = { packets: 0, bytes: 0, rateLimited: 0 };
      return;
    }
    // Counters start again from zero when the kernel path was stopped and restarted in between.
    const since = (n: number, before: number) => (n >= before ? n - before : n);
    this.core.addKernelTraffic(
      since(counters.packets, seen.packets),
      since(counters.bytes, seen.bytes),
      since(counters.rateLimited, seen.rateLimited),
      now,
    );
    this.kernelSeen = { ...counters };
  }

  /** A TCP-fallback WebSocket for this allocation; returns the receive function for its frames. */
  attachChannel(channelId: string, channel: PacketChannel): (packet: Uint8Array) => void {
    this.channels.set(channelId, channel);
    return (packet) => this.route(this.core.receive('tcp', channelId, 0, packet), packet);
  }

  detachChannel(channelId: string): void {
    this.channels.delete(channelId);
    this.core.unbind('tcp', channelId, 0);
  }

  private route(to: number, packet: Uint8Array): void {
    if (to < 0 || this.closed) return;
    const target = this.core.binding(to as 0 | 1);
    if (!target) return;
    if (target.transport === 'udp') {
      this.socket.send(packet, target.port, target.address, this.afterSend);
      return;
    }
    const channel = this.channels.get(target.address);
    if (!channel?.send(packet)) this.core.noteSendFailed();
  }

  /** The bound sides, as the broker keeps them. */
  bindings(): Array<{ publicKey: string; binding: RelayBinding }> {
    return this.held().sides.flatMap(({ publicKey, bound }) =>
      bound ? [{ publicKey, binding: bound }] : [],
    );
  }

  /** The allocation as the relay reports it to a broker it connects to: its port and bindings now. */
  held(): HeldAllocation {
    const { spec } = this.options;
    const side = (i: 0 | 1) => {
      const binding = this.core.binding(i);
      return { publicKey: spec.sides[i].publicKey, bound: binding ? toProtoBinding(binding) : null };
    };
    return {
      allocationId: this.id,
      accountId: this.accountId,
      port: this.port,
      sides: [side(0), side(1)],
      idleTimeoutMs: spec.idleTimeoutMs,
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.options.kernel?.stop(this.id).catch((err: Error) => this.options.onKernelError?.(err));
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A UDP binding from the broker is restored; a TCP one cannot be (its WebSocket is gone). */
function restoredBinding(bound: RelayBinding | null, dualStack: boolean): SideBinding | null {
  if (bound?.transport !== 'udp') return null;
  const endpoint = parseEndpoint(bound.endpoint);
  if (!endpoint) return null;
  // A dual-stack socket sees (and must address) IPv4 peers as ::ffff:a.b.c.d.
  const address = dualStack && endpoint.family === 4 ? `::ffff:${endpoint.host}` : endpoint.host;
  return { transport: 'udp', address, port: endpoint.port };
}

function toProtoBinding(binding: SideBinding): RelayBinding {
  if (binding.transport === 'tcp') return { transport: 'tcp' };
  const { address, port } = normalizeSource({ address: binding.address, port: binding.port });
  return { transport: 'udp', endpoint: formatEndpoint(address, port) };
}
