import { connect } from 'node:net';
import type { WgConfigUpdate, WgDeviceState } from './types';
import { parseUapiGet, parseUapiSetResult, serializeUapiSet } from './uapi';

/** Where wireguard-go puts its control socket; one path for all network namespaces. */
export const UAPI_SOCKET_DIR = '/var/run/wireguard';

export function uapiSocketPath(interfaceName: string): string {
  return `${UAPI_SOCKET_DIR}/${interfaceName}.sock`;
}

/** Sends one UAPI request and collects the answer up to its terminating blank line. */
export function uapiRequest(socketPath: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`UAPI request to ${socketPath} timed out`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (/(^|\n)errno=-?\d+\n\n/.test(buf)) {
        clearTimeout(timer);
        sock.end();
        resolve(buf);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`UAPI socket ${socketPath} closed before a complete answer`));
    });
  });
}

export class UapiClient {
  constructor(private readonly socketPath: string) {}

  async get(): Promise<WgDeviceState> {
    return parseUapiGet(await uapiRequest(this.socketPath, 'get=1\n\n'));
  }

  async set(update: WgConfigUpdate): Promise<void> {
    parseUapiSetResult(await uapiRequest(this.socketPath, serializeUapiSet(update)));
  }
}
