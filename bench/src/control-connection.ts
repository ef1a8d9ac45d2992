/**
 * A simulated device's control connection, as an agent makes it (the netmap and policy benches):
 * hello, the broker's proof checked, auth, then the first netmap snapshot.
 */
import type { Agent as HttpsAgent } from 'node:https';
import { DeviceAuthenticator, newNonce } from '@trellis/crypto';
import { API_PATHS, PROTOCOL_VERSION } from '@trellis/proto';
import WebSocket from 'ws';

export interface ControlDevice {
  deviceId: string;
  privateKey: string;
  publicKey: string;
}

export interface ControlEvents {
  /** A frame after the first snapshot. */
  onFrame(data: Buffer): void;
  /** The connection closed after the first snapshot. */
  onClose?(code: number): void;
}

/** Resolves with the open socket and the first snapshot's size; rejects if it closes before. */
export function connectControl(
  device: ControlDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
  events: ControlEvents,
): Promise<{ ws: WebSocket; snapshotBytes: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}${API_PATHS.control}`, {
      agent,
      maxPayload: 512 * 1024 * 1024,
      perMessageDeflate: false,
    });
    const auth = new DeviceAuthenticator(device.privateKey, device.publicKey, brokerPublicKey);
    const clientNonce = newNonce();
    let snapshotBytes = 0;
    ws.on('open', () =>
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          deviceId: device.deviceId,
          publicKey: device.publicKey,
          clientNonce,
        }),
      ),
    );
    ws.on('message', (data: Buffer) => {
      if (snapshotBytes > 0) return events.onFrame(data);
      const head = data.subarray(0, 64).toString('utf8');
      if (head.includes('"challenge"')) {
        const m = JSON.parse(data.toString('utf8')) as { brokerNonce: string; brokerProof: string };
        if (!auth.verifyBroker(m.brokerProof, clientNonce, m.brokerNonce))
          return reject(new Error('bad broker'));
        ws.send(JSON.stringify({ type: 'auth', proof: auth.deviceProof(clientNonce, m.brokerNonce) }));
      } else if (head.includes('"netmap"')) {
        snapshotBytes = data.length;
        resolve({ ws, snapshotBytes });
      }
    });
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (snapshotBytes === 0) reject(new Error(`closed ${code} before snapshot`));
      else events.onClose?.(code);
    });
  });
}
