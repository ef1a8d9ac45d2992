/**
 * A simulated device's control connection, as an agent makes it (the netmap and policy benches):
 * hello, the broker's proof checked, auth, then the first netmap snapshot.
 */
import type { Agent as HttpsAgent } from 'node:https';
import { constants, inflateRawSync } from 'node:zlib';
import { DeviceAuthenticator, newNonce } from '@trellis/crypto';
import {
  API_PATHS,
  AUTH_TIMEOUT_MS,
  CAPABILITY_VERSION,
  MAX_SERVER_FRAME_BYTES,
  ServerMessage,
  SNAPSHOT_TIMEOUT_MS,
} from '@trellis/proto';
import WebSocket from 'ws';

export interface ControlDevice {
  deviceId: string;
  privateKey: string;
  publicKey: string;
}

/**
 * The netmap a simulated device holds, as far as resuming needs it: the serial and resume token of
 * the last netmap frame. Kept up to date by connectControl; pass it to the next connection.
 */
export interface HeldNetmap {
  serial: number | null;
  token: string | null;
}

/** A netmap or delta frame's head: type, serial, a resumed delta's base, the resume token. */
const HEAD = /^\{"type":"(netmap|delta)","serial":(\d+)(?:,"base":(\d+))?(?:,"resume":"([^"]+)")?/;

export interface ControlEvents {
  /** A frame after the first snapshot (its text: a binary one inflated). */
  onFrame(data: Buffer): void;
  /** The connection closed after the first snapshot. */
  onClose?(code: number): void;
}

/**
 * Resolves with the open socket and the size of its first netmap frame (a snapshot, or with `held`
 * naming a netmap, possibly a delta resumed from it); rejects if it closes before, or misses one of
 * the agent's deadlines (the WebSocket and the challenge in AUTH_TIMEOUT_MS each, the netmap in
 * SNAPSHOT_TIMEOUT_MS after the proof), so a storm's client retries as an agent does.
 */
export function connectControl(
  device: ControlDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
  events: ControlEvents,
  held: HeldNetmap = { serial: null, token: null },
  /** Inflate and schema-check the first netmap (else only its head is read, as 10,000 would cost the one process simulating them all seconds each). */
  verify = false,
): Promise<{ ws: WebSocket; snapshotBytes: number; resumed: boolean; held: HeldNetmap }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}${API_PATHS.control}`, {
      agent,
      maxPayload: 512 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: AUTH_TIMEOUT_MS,
    });
    let deadline: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      clearTimeout(deadline);
      ws.terminate();
      reject(err);
    };
    const expire = (ms: number, what: string) => {
      clearTimeout(deadline);
      deadline = setTimeout(() => fail(new Error(`no ${what} in time`)), ms);
    };
    const auth = new DeviceAuthenticator(device.privateKey, device.publicKey, brokerPublicKey);
    const clientNonce = newNonce();
    let snapshotBytes = 0;
    const resumeFrom = held.serial !== null && held.token !== null ? held.serial : null;
    ws.on('open', () => {
      expire(AUTH_TIMEOUT_MS, 'challenge');
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocolVersion: CAPABILITY_VERSION,
          deviceId: device.deviceId,
          publicKey: device.publicKey,
          clientNonce,
          ...(held.serial !== null ? { lastSerial: held.serial } : {}),
          ...(resumeFrom !== null ? { resume: held.token } : {}),
        }),
      );
    });
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      const head = frameHead(raw, isBinary);
      const framed = HEAD.exec(head);
      if (framed) {
        held.serial = Number(framed[2]);
        held.token = framed[4] ?? null;
      }
      if (snapshotBytes > 0) return events.onFrame(isBinary ? inflated(raw) : raw);
      const resumed = framed?.[1] === 'delta' && framed[3] !== undefined;
      if (resumed && Number(framed[3]) !== resumeFrom) return fail(new Error('resumed on another netmap'));
      if (framed?.[1] === 'netmap' || resumed) {
        if (
          verify &&
          !ServerMessage.safeParse(JSON.parse((isBinary ? inflated(raw) : raw).toString('utf8'))).success
        )
          return fail(new Error('netmap does not parse'));
        snapshotBytes = raw.length;
        clearTimeout(deadline);
        resolve({ ws, snapshotBytes, resumed, held });
      } else if (head.includes('"challenge"')) {
        const m = JSON.parse(raw.toString('utf8')) as { brokerNonce: string; brokerProof: string };
        if (!auth.verifyBroker(m.brokerProof, clientNonce, m.brokerNonce))
          return fail(new Error('bad broker'));
        expire(SNAPSHOT_TIMEOUT_MS, 'netmap');
        ws.send(JSON.stringify({ type: 'auth', proof: auth.deviceProof(clientNonce, m.brokerNonce) }));
      }
    });
    ws.on('error', reject);
    ws.on('close', (code) => {
      clearTimeout(deadline);
      if (snapshotBytes === 0) reject(new Error(`closed ${code} before snapshot`));
      else events.onClose?.(code);
    });
  });
}

/**
 * The first 160 characters of a frame, where its type, serial and resume token are. A compressed
 * snapshot (capability 3) has its head inflated from its first bytes alone.
 */
export function frameHead(raw: Buffer, isBinary: boolean): string {
  const data = isBinary ? inflateRawSync(raw.subarray(0, 512), { finishFlush: constants.Z_SYNC_FLUSH }) : raw;
  return data.subarray(0, 160).toString('utf8');
}

function inflated(raw: Buffer): Buffer {
  return inflateRawSync(raw, { maxOutputLength: MAX_SERVER_FRAME_BYTES });
}
