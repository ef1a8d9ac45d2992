/**
 * N simulated devices, each a real WebSocket control client doing the real challenge-response.
 * Frames are not parsed: a netmap at thousands of devices is megabytes. While armed, each client
 * records its first frame other than a pong (time, type, whether it names the watched device) and
 * counts the rest; the orchestrator decides what was expected.
 */
import { Agent as HttpsAgent } from 'node:https';
import { Backoff, HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import WebSocket from 'ws';
import { connectControl } from '../control-connection';
import { pinnedBrokerAgent } from '../pinned-agent';
import { nowMs } from '../stats';
import type { Arrival, BenchDevice, ClientCommand, ClientReply } from './messages';

const send = (m: ClientReply) => process.send?.(m);
const CONNECT_CONCURRENCY = 64;
const CONNECT_ATTEMPTS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sockets: WebSocket[] = [];
let stopping = false;
/** Established connections the broker closed, by close code, since the last report. */
let dropped: Record<string, number> = {};

interface Armed {
  id: number;
  arrivals: Arrival[];
  /** Expected clients that have not had a frame yet. */
  waiting: Set<number>;
  watch?: Buffer;
  timer: NodeJS.Timeout;
  reported: boolean;
}
let armed: Armed | undefined;

/** `"type":"xyz"` near the start of a frame (the broker writes `type` first). */
function typeOf(head: string): string {
  return /"type"\s*:\s*"([a-z-]+)"/.exec(head)?.[1] ?? '?';
}

function onFrame(index: number, data: Buffer): void {
  const a = armed;
  if (!a) return;
  const at = nowMs();
  const type = typeOf(data.subarray(0, 48).toString('utf8'));
  if (type === 'pong') return;
  const rec = a.arrivals[index]!;
  rec.frames++;
  if (rec.at !== undefined) return;
  rec.at = at;
  rec.type = type;
  if (a.watch) rec.mentions = data.includes(a.watch);
  if (a.waiting.delete(index) && a.waiting.size === 0) reportArrived(a);
}

function reportArrived(a: Armed): void {
  if (a.reported) return;
  a.reported = true;
  clearTimeout(a.timer);
  send({ kind: 'arrived', id: a.id, missing: a.waiting.size });
}

async function connectOne(
  index: number,
  device: BenchDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
): Promise<number> {
  const { ws, snapshotBytes } = await connectControl(device, url, agent, brokerPublicKey, {
    onFrame: (data) => onFrame(index, data),
    onClose: (code) => {
      if (!stopping) onDropped(index, code, device, url, agent, brokerPublicKey);
    },
  });
  sockets[index] = ws;
  return snapshotBytes;
}

/**
 * The broker closed an established connection (e.g. heartbeat timeout after its event loop was
 * blocked): counted against the armed change, and the device reconnects as an agent would, after
 * its backoff delays. The snapshot it gets then is not counted as an arrival.
 */
function onDropped(
  index: number,
  code: number,
  device: BenchDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
): void {
  dropped[code] = (dropped[code] ?? 0) + 1;
  const a = armed;
  const rec = a?.arrivals[index];
  if (rec) rec.dropped = (rec.dropped ?? 0) + 1;
  // It will not get the change now (its next snapshot after reconnecting has it): stop waiting.
  if (a && rec?.at === undefined && a.waiting.delete(index) && a.waiting.size === 0) reportArrived(a);
  const backoff = new Backoff();
  const retry = async () => {
    for (;;) {
      await sleep(backoff.next());
      try {
        await connectOne(index, device, url, agent, brokerPublicKey);
        return;
      } catch {
        // and again, after the next delay
      }
    }
  };
  void retry();
}

/** Heartbeats: the broker closes connections silent for 3 intervals. */
function startHeartbeats(): void {
  setInterval(() => {
    for (const ws of sockets)
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
  }, HEARTBEAT_INTERVAL_MS).unref();
}

async function connectAll(m: Extract<ClientCommand, { cmd: 'connect' }>): Promise<void> {
  const agent = pinnedBrokerAgent(m.certPem);
  const started = nowMs();
  let next = 0;
  let done = 0;
  let failed = 0;
  let bytes = 0;
  let retries = 0;
  const retryReasons: Record<string, number> = {};
  startHeartbeats();
  const worker = async () => {
    while (next < m.devices.length) {
      const i = next++;
      // As an agent does: a failed attempt (e.g. the broker's auth timeout while it is busy
      // computing first snapshots) is retried after a pause.
      for (let attempt = 1; ; attempt++) {
        try {
          const got = await connectOne(i, m.devices[i]!, m.url, agent, m.brokerPublicKey);
          bytes += got;
          break;
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          if (attempt < CONNECT_ATTEMPTS) {
            retries++;
            retryReasons[why] = (retryReasons[why] ?? 0) + 1;
            await sleep(500 * attempt);
            continue;
          }
          failed++;
          if (failed <= 3) console.error(`client ${i}: ${why}`);
          break;
        }
      }
      if (++done % 1000 === 0) send({ kind: 'progress', connected: done - failed });
    }
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  send({
    kind: 'connected',
    count: done - failed,
    failed,
    retries,
    retryReasons,
    snapshotBytes: bytes,
    elapsedMs: nowMs() - started,
  });
}

process.on('message', (m: ClientCommand) => {
  if (m.cmd === 'connect') {
    connectAll(m).catch((err: unknown) => send({ kind: 'error', message: String(err) }));
  } else if (m.cmd === 'arm') {
    const a: Armed = {
      id: m.id,
      arrivals: Array.from({ length: sockets.length }, () => ({ frames: 0 })),
      waiting: new Set(m.expected),
      ...(m.watch ? { watch: Buffer.from(`"${m.watch}"`) } : {}),
      timer: setTimeout(() => reportArrived(a), m.timeoutMs),
      reported: false,
    };
    armed = a;
    send({ kind: 'armed', id: m.id });
    if (a.waiting.size === 0) reportArrived(a);
  } else if (m.cmd === 'settle') {
    // Every client connected again (after the broker closed connections, they reconnect on their own).
    const started = nowMs();
    const check = () => {
      const open = sockets.filter((ws) => ws?.readyState === WebSocket.OPEN).length;
      if (open >= m.count || nowMs() - started > m.timeoutMs) {
        send({ kind: 'settled', open, waitedMs: nowMs() - started });
      } else setTimeout(check, 250);
    };
    check();
  } else if (m.cmd === 'collect') {
    const a = armed;
    armed = undefined;
    if (a) clearTimeout(a.timer);
    send({ kind: 'collected', id: m.id, arrivals: a?.arrivals ?? [], dropped });
    dropped = {};
  } else if (m.cmd === 'stop') {
    stopping = true;
    for (const ws of sockets) ws?.terminate();
    process.exit(0);
  }
});
