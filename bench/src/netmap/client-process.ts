/**
 * Thousands of simulated devices, each a real WebSocket client doing the real challenge-response.
 * Snapshots are counted, not parsed (a 10k-peer snapshot is megabytes); deltas are parsed and the
 * arrival time of each expected change is recorded per client.
 */
import { Agent as HttpsAgent } from 'node:https';
import { DeviceAuthenticator, newNonce } from '@trellis/crypto';
import { API_PATHS, HEARTBEAT_INTERVAL_MS, PROTOCOL_VERSION, ServerMessage } from '@trellis/proto';
import WebSocket from 'ws';
import { nowMs } from '../stats';
import type { BenchDevice, ClientCommand, ClientReply } from './messages';

const send = (m: ClientReply) => process.send?.(m);
const CONNECT_CONCURRENCY = 64;

interface Expectation {
  id: number;
  kind: 'join' | 'remove';
  publicKey?: string;
  deviceId?: string;
  times: Map<number, number>;
  /** Clients connected when the change was made: each must see it. */
  expected: number;
  timer: NodeJS.Timeout;
}

const sockets: WebSocket[] = [];
const expectations = new Map<number, Expectation>();

function onDelta(index: number, text: string): void {
  if (expectations.size === 0) return;
  const msg = ServerMessage.safeParse(JSON.parse(text));
  if (!msg.success || msg.data.type !== 'delta') return;
  const at = nowMs();
  for (const e of expectations.values()) {
    if (e.times.has(index)) continue;
    const hit =
      e.kind === 'join'
        ? msg.data.upsert.some((p) => p.publicKey === e.publicKey)
        : msg.data.remove.includes(e.deviceId ?? '');
    if (hit) e.times.set(index, at);
    if (e.times.size >= e.expected) report(e);
  }
}

function report(e: Expectation): void {
  clearTimeout(e.timer);
  expectations.delete(e.id);
  send({ kind: 'arrivals', id: e.id, times: [...e.times.values()], missing: e.expected - e.times.size });
}

function connectOne(
  index: number,
  device: BenchDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
): Promise<number> {
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
      if (snapshotBytes > 0) return onDelta(index, data.toString('utf8'));
      const head = data.subarray(0, 64).toString('utf8');
      if (head.includes('"challenge"')) {
        const m = JSON.parse(data.toString('utf8')) as { brokerNonce: string; brokerProof: string };
        if (!auth.verifyBroker(m.brokerProof, clientNonce, m.brokerNonce))
          return reject(new Error('bad broker'));
        ws.send(JSON.stringify({ type: 'auth', proof: auth.deviceProof(clientNonce, m.brokerNonce) }));
      } else if (head.includes('"netmap"')) {
        snapshotBytes = data.length;
        sockets[index] = ws;
        resolve(snapshotBytes);
      }
    });
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (snapshotBytes === 0) reject(new Error(`closed ${code} before snapshot`));
    });
  });
}

async function connectAll(m: Extract<ClientCommand, { cmd: 'connect' }>): Promise<void> {
  const agent = new HttpsAgent({ ca: m.certPem, keepAlive: false, maxCachedSessions: 0 });
  const started = nowMs();
  let next = 0;
  let done = 0;
  let failed = 0;
  let bytes = 0;
  // Heartbeats start with the first client: the broker closes connections silent for 3 intervals,
  // and connecting thousands takes longer than that.
  const ping = () => {
    for (const ws of sockets) ws?.send(JSON.stringify({ type: 'ping', t: Date.now() }));
  };
  setInterval(ping, HEARTBEAT_INTERVAL_MS).unref();
  const worker = async () => {
    while (next < m.devices.length) {
      const i = next++;
      try {
        // Not `bytes += await …`: that reads `bytes` before awaiting and loses the other workers' sums.
        const got = await connectOne(i, m.devices[i]!, m.url, agent, m.brokerPublicKey);
        bytes += got;
      } catch (err) {
        failed++;
        if (failed <= 3) console.error(`client ${i}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (++done % 1000 === 0) send({ kind: 'progress', connected: done - failed });
    }
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  send({
    kind: 'connected',
    count: done - failed,
    failed,
    snapshotBytes: bytes,
    elapsedMs: nowMs() - started,
  });
}

process.on('message', (m: ClientCommand) => {
  if (m.cmd === 'connect') {
    connectAll(m).catch((err: unknown) => send({ kind: 'error', message: String(err) }));
  } else if (m.cmd === 'expect') {
    const e: Expectation = {
      id: m.id,
      kind: m.kind,
      publicKey: m.publicKey,
      deviceId: m.deviceId,
      times: new Map(),
      expected: sockets.filter((s) => s?.readyState === WebSocket.OPEN).length,
      timer: setTimeout(() => report(e), m.timeoutMs),
    };
    expectations.set(m.id, e);
    send({ kind: 'armed', id: m.id });
  } else if (m.cmd === 'stop') {
    for (const ws of sockets) ws?.terminate();
    process.exit(0);
  }
});
