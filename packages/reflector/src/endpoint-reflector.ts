import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { ReflectorCounters } from './counters';
import {
  type DeviceRecord,
  type Observation,
  ReflectorCore,
  type ReflectorCoreOptions,
} from './reflector-core';

export interface EndpointReflectorOptions extends ReflectorCoreOptions {
  /** Address to bind; default '0.0.0.0' (use '::' with type 'udp6' for dual-stack). */
  host?: string;
  /** UDP port; 0 picks a free one. */
  port: number;
  type?: SocketType;
}

export interface EndpointReflectorEvents {
  observed: [Observation];
}

/**
 * The endpoint reflector as a UDP service: devices add it as a WireGuard peer, and every handshake
 * or keepalive their own WireGuard socket sends it reveals (authenticated) the address their NAT
 * maps that socket to. Emits `observed` for each valid initiation and whenever a device's endpoint
 * changes (roaming seen on keepalives).
 */
export class EndpointReflector extends EventEmitter<EndpointReflectorEvents> {
  private readonly core: ReflectorCore;
  private socket: Socket | undefined;

  constructor(private readonly options: EndpointReflectorOptions) {
    super();
    this.core = new ReflectorCore(options);
  }

  /** The reflector's static public key (base64): what agents configure as the peer key. */
  get publicKey(): string {
    return this.core.publicKey;
  }

  async start(): Promise<{ address: string; port: number }> {
    if (this.socket) throw new Error('reflector already started');
    const socket = createSocket({ type: this.options.type ?? 'udp4', ipv6Only: false });
    this.socket = socket;
    socket.on('message', (packet, rinfo) => {
      void this.core.handle(packet, rinfo).then((outcome) => {
        if (outcome.reply) this.reply(socket, outcome.reply, rinfo);
        if (outcome.observation) this.notify(outcome.observation);
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        const host = this.options.host ?? (this.options.type === 'udp6' ? '::' : '0.0.0.0');
        socket.bind(this.options.port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.socket = undefined;
      try {
        socket.close();
      } catch {
        // never bound: nothing to close
      }
      throw err;
    }
    // Once bound, errors (e.g. ICMP unreachable for one send) concern a single datagram: keep serving.
    socket.on('error', () => this.core.noteSocketError());
    const { address, port } = socket.address();
    return { address, port };
  }

  private reply(socket: Socket, packet: Uint8Array, to: { address: string; port: number }): void {
    if (this.socket !== socket) return; // closed meanwhile
    try {
      socket.send(packet, to.port, to.address, (err) => {
        if (err) this.core.noteSocketError();
      });
    } catch {
      this.core.noteSocketError();
    }
  }

  private notify(observation: Observation): void {
    try {
      this.emit('observed', observation);
    } catch {
      // A bug in an `observed` listener must not take the service down; it is counted.
      this.core.noteListenerError();
    }
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  counters(): ReflectorCounters {
    return this.core.counters();
  }

  lookup(publicKey: string): DeviceRecord | undefined {
    return this.core.lookup(publicKey);
  }

  forget(publicKey: string): void {
    this.core.forget(publicKey);
  }
}
