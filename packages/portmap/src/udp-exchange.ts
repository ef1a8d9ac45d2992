import { createSocket, type Socket } from 'node:dgram';

// One request/response exchange over a connected UDP socket: the kernel then delivers only datagrams
// from the gateway's address and port. Retransmits on the given schedule, as NAT-PMP and PCP ask.

export interface UdpExchange<T> {
  host: string;
  port: number;
  request: Uint8Array;
  /** Returns the parsed answer, or undefined to keep waiting (a stray or malformed datagram). */
  accept: (message: Buffer) => T | undefined;
  /** Wait after each transmission, milliseconds; the number of entries is the number of tries. */
  waitsMs: readonly number[];
}

export const MAX_DATAGRAM = 1100; // PCP's maximum message size; NAT-PMP messages are smaller

export function exchange<T>(spec: UdpExchange<T>): Promise<T | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (value: T | undefined) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    socket.on('error', () => finish(undefined));
    socket.on('message', (message) => {
      if (message.length > MAX_DATAGRAM) return;
      const value = spec.accept(message);
      if (value !== undefined) finish(value);
    });
    const attempt = (index: number) => {
      if (done) return;
      if (index >= spec.waitsMs.length) return finish(undefined);
      socket.send(spec.request, (error) => {
        if (error) finish(undefined);
      });
      timer = setTimeout(() => attempt(index + 1), spec.waitsMs[index]);
    };
    socket.connect(spec.port, spec.host, () => attempt(0));
  });
}

/** The local IPv4 address the kernel would use to reach `host` (no packet is sent). */
export function localAddressToward(host: string, port = 9): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket: Socket = createSocket('udp4');
    socket.on('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.connect(port, host, () => {
      const { address } = socket.address();
      socket.close();
      resolve(address);
    });
  });
}
