import { createSocket, type Socket } from 'node:dgram';

/** A UDP socket on 127.0.0.1 that queues what it receives, for driving a relay from a test. */
export class UdpDevice {
  readonly socket: Socket = createSocket('udp4');
  private readonly queue: Buffer[] = [];
  private waiter: (() => void) | undefined;

  async start(): Promise<this> {
    this.socket.on('message', (packet) => {
      this.queue.push(packet);
      this.waiter?.();
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(packet: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(packet, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }

  /** The next packet received (waits for it). */
  async next(): Promise<Buffer> {
    while (this.queue.length === 0) await new Promise<void>((resolve) => (this.waiter = resolve));
    return this.queue.shift()!;
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
