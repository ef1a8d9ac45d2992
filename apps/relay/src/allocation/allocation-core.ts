import {
  handshakeMac1ValidWithKey,
  INITIATION_OFFSETS,
  MAC_LENGTH,
  mac1Key,
  RESPONSE_OFFSETS,
} from '@trellis/noise';
import { TokenBucket, type TokenBucketRate } from '@trellis/reflector';
import { classifyPacket, PacketKind } from '../packet/wireguard-packet';
import { type DropCounts, type DropReason, emptyDropCounts } from './drop-reason';

// Threat model. mac1 is keyed by HASH("mac1----" ‖ receiver's PUBLIC key): anyone who knows a
// device's public key (every peer in its netmap, the broker, an observer of a netmap) can forge a
// handshake with a valid mac1 and so move a side's binding to an address of their choosing. What they
// gain is disruption only: they receive ciphertext they cannot read and cannot inject anything the
// peer accepts (WireGuard authenticates every transport packet; the forged handshake itself fails at
// the peer). An on-path attacker can also replay a captured handshake from elsewhere. So:
// - a handshake identical to a recent one (same mac1, which covers every byte before it) never binds
//   from another address; mac2 is left out of the digest because it is not covered by mac1;
// - moving a bound side costs a token from a small per-side rebind budget, so forging cannot flap
//   a binding faster than that; the legitimate device rebinds on its next handshake;
// - every packet costs budget (allocation and account); handshakes from unbound sources also spend
//   a small handshake budget (mac1 = one BLAKE2s), which bound sides' rekeys do not depend on.

export type Transport = 'udp' | 'tcp';

/** Where a side is bound: a UDP source (address, port), or a TCP-fallback WebSocket (its id, port 0). */
export interface SideBinding {
  readonly transport: Transport;
  readonly address: string;
  readonly port: number;
}

export interface AllocationLimits {
  /** Every packet of the allocation. */
  packets: TokenBucketRate;
  /** Handshake packets (each costs a mac1 check) of the allocation. */
  handshakes: TokenBucketRate;
  /** Moves of one side's binding to another address. */
  rebinds: TokenBucketRate;
}

export const DEFAULT_ALLOCATION_LIMITS: AllocationLimits = {
  packets: { capacity: 200_000, refillPerSecond: 200_000 },
  handshakes: { capacity: 50, refillPerSecond: 10 },
  rebinds: { capacity: 4, refillPerSecond: 0.2 },
};

/** How many recent handshake digests each allocation remembers for replay refusal. */
export const REPLAY_MEMORY = 256;

export interface AllocationCoreOptions {
  /** The two sides' WireGuard public keys (base64). */
  publicKeys: readonly [string, string];
  idleTimeoutMs: number;
  now: () => number;
  limits?: AllocationLimits;
  /** The account's shared packet budget (AccountBuckets). */
  accountBucket?: TokenBucket;
  /** Bindings known from before (a relay restart); restored without a handshake or an event. */
  initialBindings?: readonly [SideBinding | null, SideBinding | null];
  /** A side was bound or moved by a valid handshake. */
  onBound?: (side: 0 | 1, binding: SideBinding) => void;
}

export interface ForwardCounts {
  packets: number;
  bytes: number;
}

/**
 * One allocation's forwarding decision, without I/O. `receive` answers, for each packet, the side to
 * send it to (0 or 1; its binding is `binding(side)`) or -1 when dropped (counted by reason).
 * The common path (a transport packet between bound sides) allocates nothing.
 */
export class AllocationCore {
  readonly drops: DropCounts = emptyDropCounts();
  /** Forwarded traffic by the transport it left on. */
  readonly forwarded: Record<Transport, ForwardCounts> = {
    udp: { packets: 0, bytes: 0 },
    tcp: { packets: 0, bytes: 0 },
  };
  binds = 0;

  private readonly bound: [SideBinding | null, SideBinding | null];
  private readonly mac1Keys: readonly [Uint8Array, Uint8Array];
  private readonly packetBucket: TokenBucket;
  private readonly handshakeBucket: TokenBucket;
  private readonly rebindBuckets: readonly [TokenBucket, TokenBucket];
  private readonly recentHandshakes = new Set<string>();
  private lastForwardAt: number;

  constructor(private readonly options: AllocationCoreOptions) {
    const now = options.now();
    const limits = options.limits ?? DEFAULT_ALLOCATION_LIMITS;
    this.mac1Keys = [
      mac1Key(Buffer.from(options.publicKeys[0], 'base64')),
      mac1Key(Buffer.from(options.publicKeys[1], 'base64')),
    ];
    this.bound = [options.initialBindings?.[0] ?? null, options.initialBindings?.[1] ?? null];
    this.packetBucket = new TokenBucket(limits.packets, now);
    this.handshakeBucket = new TokenBucket(limits.handshakes, now);
    this.rebindBuckets = [new TokenBucket(limits.rebinds, now), new TokenBucket(limits.rebinds, now)];
    this.lastForwardAt = now;
  }

  receive(transport: Transport, address: string, port: number, packet: Uint8Array): number {
    const kind = classifyPacket(packet);
    if (kind === PacketKind.malformed) return this.drop('malformed');
    const now = this.options.now();
    if (!this.packetBucket.take(now)) return this.drop('rate-limited');
    if (this.options.accountBucket && !this.options.accountBucket.take(now)) return this.drop('rate-limited');
    const from = this.sideAt(transport, address, port);
    if (kind === PacketKind.initiation || kind === PacketKind.response) {
      return this.handshake(transport, address, port, from, packet, now);
    }
    // Transport data and cookie replies: only between bound sides.
    if (from < 0) return this.drop('unbound-source');
    return this.forward(from === 0 ? 1 : 0, packet.length, now);
  }

  binding(side: 0 | 1): SideBinding | null {
    return this.bound[side];
  }

  /** Forget a binding whose transport is gone (a closed WebSocket); the next handshake binds again. */
  unbind(transport: Transport, address: string, port: number): void {
    const side = this.sideAt(transport, address, port);
    if (side >= 0) this.bound[side] = null;
  }

  /** Traffic the kernel forwarded (and dropped over budget) for this pair since the last call. */
  addKernelTraffic(packets: number, bytes: number, rateLimited: number, now: number): void {
    this.forwarded.udp.packets += packets;
    this.forwarded.udp.bytes += bytes;
    this.drops['rate-limited'] += rateLimited;
    if (packets > 0) this.touch(now);
  }

  /** Traffic forwarded elsewhere counts as activity. */
  touch(now: number): void {
    if (now > this.lastForwardAt) this.lastForwardAt = now;
  }

  /** True once no packet has been forwarded for idleTimeoutMs. */
  isIdle(now: number): boolean {
    return now - this.lastForwardAt >= this.options.idleTimeoutMs;
  }

  private handshake(
    transport: Transport,
    address: string,
    port: number,
    from: number,
    packet: Uint8Array,
    now: number,
  ): number {
    // Only unbound sources spend the handshake budget: a flood of forged handshakes must not stop
    // the bound devices' own rekeys (their packets are limited by the packet budget like any other).
    if (from < 0 && !this.handshakeBucket.take(now)) return this.drop('rate-limited');
    // Try first the key of the side the source is not bound as: the likely receiver.
    const likely = from === 0 ? 1 : 0;
    let receiver: 0 | 1;
    if (handshakeMac1ValidWithKey(this.mac1Keys[likely], packet)) receiver = likely;
    else if (handshakeMac1ValidWithKey(this.mac1Keys[likely === 0 ? 1 : 0], packet))
      receiver = likely === 0 ? 1 : 0;
    else return this.drop('bad-mac1');
    const sender = receiver === 0 ? 1 : 0;
    const digest = handshakeDigest(packet);
    const seen = this.recentHandshakes.has(digest);
    if (!seen) this.remember(digest);
    if (from === sender) return this.forward(receiver, packet.length, now);
    if (from === receiver) return this.drop('side-conflict');
    if (seen) return this.drop('replay');
    if (this.bound[sender] && !this.rebindBuckets[sender].take(now)) return this.drop('rebind-limited');
    const binding: SideBinding = { transport, address, port };
    this.bound[sender] = binding;
    this.binds++;
    this.options.onBound?.(sender, binding);
    return this.forward(receiver, packet.length, now);
  }

  private forward(to: 0 | 1, length: number, now: number): number {
    const target = this.bound[to];
    if (!target) return this.drop('peer-unbound');
    this.lastForwardAt = now;
    const counts = this.forwarded[target.transport];
    counts.packets++;
    counts.bytes += length;
    return to;
  }

  /** The shell could not send what `receive` accepted. */
  noteSendFailed(): void {
    this.drops['send-failed']++;
  }

  private sideAt(transport: Transport, address: string, port: number): number {
    const a = this.bound[0];
    if (a && a.port === port && a.address === address && a.transport === transport) return 0;
    const b = this.bound[1];
    if (b && b.port === port && b.address === address && b.transport === transport) return 1;
    return -1;
  }

  private remember(digest: string): void {
    if (this.recentHandshakes.size >= REPLAY_MEMORY) {
      const oldest = this.recentHandshakes.values().next().value;
      if (oldest !== undefined) this.recentHandshakes.delete(oldest);
    }
    this.recentHandshakes.add(digest);
  }

  private drop(reason: DropReason): -1 {
    this.drops[reason]++;
    return -1;
  }
}

/** mac1 of a handshake: a keyed hash of every byte before it, so it identifies the packet. */
function handshakeDigest(packet: Uint8Array): string {
  const at = packet[0] === 1 ? INITIATION_OFFSETS.mac1 : RESPONSE_OFFSETS.mac1;
  return Buffer.from(packet.buffer, packet.byteOffset + at, MAC_LENGTH).toString('base64');
}
