import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

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
  const socket = createSocket('udp4');
  return retransmit(socket, {
    open: (ready) => socket.connect(spec.port, spec.host, ready),
    transmit: (fail) =>
      socket.send(spec.request, (error) => {
        if (error) fail();
      }),
    accept: (message) => (message.length > MAX_DATAGRAM ? undefined : spec.accept(message)),
    waitsMs: spec.waitsMs,
  });
}

export interface Retransmission<T> {
  /** Connects or binds the socket, then calls `ready` (or `fail` if it cannot be set up). */
  open: (ready: () => void, fail: () => void) => void;
  /** Sends the request(s) once; `fail` ends the exchange without an answer. */
  transmit: (fail: () => void) => void;
  /** The parsed answer, or undefined to keep waiting (a stray or malformed datagram). */
  accept: (message: Buffer, from: RemoteInfo) => T | undefined;
  /** Wait after each transmission, milliseconds; the number of entries is the number of tries. */
  waitsMs: readonly number[];
}

/**
 * Transmits on the schedule until an answer is accepted or the tries run out; the socket is closed
 * either way and the promise never rejects.
 */
export function retransmit<T>(socket: Socket, spec: Retransmission<T>): Promise<T | undefined> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (value: T | undefined) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const fail = () => finish(undefined);
    socket.on('error', fail);
    socket.on('message', (message, from) => {
      const value = spec.accept(message, from);
      if (value !== undefined) finish(value);
    });
    const attempt = (index: number) => {
      if (done) return;
      if (index >= spec.waitsMs.length) return fail();
      spec.transmit(fail);
      timer = setTimeout(() => attempt(index + 1), spec.waitsMs[index]);
    };
    spec.open(() => attempt(0), fail);
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
