import type { WebSocket } from 'ws';

/** The part of a `ws` WebSocket the sender uses (tests pass a fake). */
export type FrameSocket = Pick<WebSocket, 'send' | 'readyState' | 'OPEN'>;

/**
 * Sends one connection's frames in order: text, or binary (a compressed snapshot, capability 3). A large frame (a snapshot of a big account) goes out
 * as fragments of one WebSocket message, each after the previous reached the socket. Written at
 * once, a few hundred KB park in the TLS layer's buffers, and Node keeps that memory per
 * connection afterwards (measured: ~55 KB RSS per idle TLS connection, ~377 KB after one 280 KB
 * write, ~120 KB when paced in 16 KB pieces). Later frames wait: fragments may not interleave.
 */
export class PacedFrameSender {
  private readonly queue: Array<string | Buffer> = [];
  private busy = false;

  constructor(
    private readonly ws: FrameSocket,
    private readonly fragmentBytes = 16 * 1024,
    private readonly largeBytes = 64 * 1024,
  ) {}

  /** Frames waiting behind a large one being paced out. */
  get pending(): number {
    return this.queue.length;
  }

  send(frame: string | Buffer): void {
    this.queue.push(frame);
    this.pump();
  }

  private pump(): void {
    while (!this.busy) {
      const frame = this.queue.shift();
      if (frame === undefined) return;
      if (this.ws.readyState !== this.ws.OPEN) {
        this.queue.length = 0;
        return;
      }
      const binary = typeof frame !== 'string';
      if (frame.length <= this.largeBytes) {
        this.ws.send(frame, { binary });
        continue;
      }
      this.busy = true;
      this.sendFragment(binary ? frame : Buffer.from(frame, 'utf8'), binary, 0);
    }
  }

  private sendFragment(message: Buffer, binary: boolean, offset: number): void {
    const end = Math.min(message.length, offset + this.fragmentBytes);
    const fin = end === message.length;
    this.ws.send(message.subarray(offset, end), { binary, fin }, (err) => {
      if (err || this.ws.readyState !== this.ws.OPEN) {
        this.queue.length = 0;
        this.busy = false;
        return;
      }
      if (!fin) return this.sendFragment(message, binary, end);
      this.busy = false;
      this.pump();
    });
  }
}
