import type { ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { CreateConnection } from './broker-connect';

type SocketCallback = (err: Error | null, socket: Duplex) => void;

/** An HTTPS agent (https.request, ws) whose connections come from one of this package's connect functions. */
export class TlsConnectAgent extends HttpsAgent {
  constructor(private readonly connect: CreateConnection) {
    super({ keepAlive: false });
  }

  override createConnection(options: ClientRequestArgs, callback?: SocketCallback): Duplex | undefined {
    return this.connect(options as ConnectionOptions, (err, socket) => callback?.(err, socket));
  }
}
