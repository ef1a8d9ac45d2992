/**
 * Framing of the relay's TCP fallback (agent ⇄ relay WebSocket at RELAY_TCP_PATH), chosen by the
 * WebSocket subprotocol, so either end may be older:
 * - RELAY_TCP_PACKET_PROTOCOL, or no subprotocol (agents and relays before batching): one binary
 *   message per WireGuard packet;
 * - RELAY_TCP_BATCH_PROTOCOL: one binary message carries one or more packets, each a 2-byte
 *   big-endian length (1…RELAY_TCP_MAX_PACKET) then its bytes, at most RELAY_TCP_MAX_BATCH_FRAME bytes.
 * An agent offers [packet, batch] in that order: an older relay takes the first offered (the `ws`
 * default) and gets per-packet messages; a newer one picks batch. An older agent offers nothing.
 * Batching is per event-loop turn (RelayFrameWriter): a packet waits for no timer, but the packets
 * of one turn (a burst read from UDP or from the TLS stream) leave in one write, one TLS record
 * and one WebSocket message instead of one each.
 */
export const RELAY_TCP_PACKET_PROTOCOL = 'trellis-relay-packet.v1';
export const RELAY_TCP_BATCH_PROTOCOL = 'trellis-relay-batch.v1';
/** Largest WireGuard packet carried (a UDP datagram's payload limit). */
export const RELAY_TCP_MAX_PACKET = 65_535;
const LENGTH_BYTES = 2;
/** Largest batched message: one largest packet with its length. */
export const RELAY_TCP_MAX_BATCH_FRAME = RELAY_TCP_MAX_PACKET + LENGTH_BYTES;

/** The relay's choice among the subprotocols an agent offers (false: none, per-packet framing). */
export function chooseRelayTcpProtocol(offered: ReadonlySet<string>): string | false {
  if (offered.has(RELAY_TCP_BATCH_PROTOCOL)) return RELAY_TCP_BATCH_PROTOCOL;
  if (offered.has(RELAY_TCP_PACKET_PROTOCOL)) return RELAY_TCP_PACKET_PROTOCOL;
  return false;
}

/** Packs packets, in order, into as few messages of at most `maxFrame` bytes as they fit in. */
export function encodeBatchFrames(
  packets: readonly Uint8Array[],
  maxFrame: number = RELAY_TCP_MAX_BATCH_FRAME,
): Buffer[] {
  const frames: Buffer[] = [];
  let start = 0;
  while (start < packets.length) {
    let size = 0;
    let end = start;
    for (; end < packets.length; end++) {
      const length = packets[end]!.length;
      if (length === 0 || length > RELAY_TCP_MAX_PACKET) throw new RangeError(`packet of ${length} bytes`);
      if (end > start && size + LENGTH_BYTES + length > maxFrame) break;
      size += LENGTH_BYTES + length;
    }
    const frame = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = start; i < end; i++) {
      const packet = packets[i]!;
      frame.writeUInt16BE(packet.length, at);
      frame.set(packet, at + LENGTH_BYTES);
      at += LENGTH_BYTES + packet.length;
    }
    frames.push(frame);
    start = end;
  }
  return frames;
}

/**
 * Calls `onPacket` with each packet of a batched message (views into it, not copies); false, and
 * nothing more delivered, at the first malformed length (zero, or past the end).
 */
export function decodeBatchFrame(frame: Uint8Array, onPacket: (packet: Uint8Array) => void): boolean {
  if (frame.length === 0) return false;
  let at = 0;
  while (at < frame.length) {
    if (at + LENGTH_BYTES > frame.length) return false;
    const length = (frame[at]! << 8) | frame[at + 1]!;
    const start = at + LENGTH_BYTES;
    if (length === 0 || start + length > frame.length) return false;
    onPacket(frame.subarray(start, start + length));
    at = start + length;
  }
  return true;
}

/** Where a RelayFrameWriter's output goes: the WebSocket, and the turn-end scheduler. */
export interface RelayFrameSink {
  /** One binary WebSocket message. */
  send(message: Uint8Array): void;
  /** Around a turn's per-packet messages: hold writes, then write them at once (socket cork/uncork). */
  cork(): void;
  uncork(): void;
  /** Runs `flush` once the current event-loop turn's I/O is handled (setImmediate). */
  schedule(flush: () => void): void;
}

/**
 * Collects the packets of one event-loop turn and writes them at its end: as batched messages when
 * `batched`, otherwise one message each inside one cork, so still one socket write and TLS record.
 */
export class RelayFrameWriter {
  private pending: Uint8Array[] = [];
  private bytes = 0;
  private readonly flushNow = () => this.flush();

  constructor(
    private readonly sink: RelayFrameSink,
    readonly batched: boolean,
  ) {}

  /** Bytes held for the end of the turn (to count against a send buffer limit). */
  get pendingBytes(): number {
    return this.bytes;
  }

  write(packet: Uint8Array): void {
    if (this.pending.length === 0) this.sink.schedule(this.flushNow);
    this.pending.push(packet);
    this.bytes += packet.length;
  }

  /** Writes what is held (also called by the scheduler); nothing when nothing is. */
  flush(): void {
    const packets = this.pending;
    if (packets.length === 0) return;
    this.pending = [];
    this.bytes = 0;
    if (this.batched) {
      for (const frame of encodeBatchFrames(packets)) this.sink.send(frame);
      return;
    }
    this.sink.cork();
    for (const packet of packets) this.sink.send(packet);
    this.sink.uncork();
  }

  /** Forgets what is held (the connection closed). */
  clear(): void {
    this.pending = [];
    this.bytes = 0;
  }
}
