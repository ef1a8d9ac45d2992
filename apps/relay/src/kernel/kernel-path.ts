/** A UDP side of an allocation as the kernel path needs it (IPv4 only). */
export interface UdpSide {
  address: string;
  port: number;
}

/**
 * Forwarding of bound pairs by the kernel instead of the relay process: Node handles one datagram
 * per system call, which caps a relay at tens of thousands of packets per second. Only packets
 * from the two bound sources to the allocation's port are forwarded this way; everything else
 * (handshakes from a new address, junk) still reaches the process, so bindings stay mac1-checked.
 */
export interface KernelPath {
  /** Forward between `a` and `b` on relay port `port` (replaces what the allocation had). */
  forward(allocationId: string, port: number, a: UdpSide, b: UdpSide): Promise<void>;
  /** Back to the process for this allocation. */
  stop(allocationId: string): Promise<void>;
  /** Relay ports whose pair the kernel forwarded recently (for idle expiry). */
  activePorts(): Promise<Set<number>>;
  close(): Promise<void>;
}
