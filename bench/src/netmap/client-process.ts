/**
 * Thousands of simulated devices, each a real WebSocket client doing the real challenge-response.
 * Snapshots are counted, not parsed (a 10k-peer snapshot is megabytes); other messages are parsed
 * while something is awaited: the arrival time of each expected change, and of the first `relay` or
 * `punch` answering a `want-path`, is recorded per client.
 */
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff, type ClientMessage, HEARTBEAT_INTERVAL_MS, ServerMessage } from '@trellis/proto';
import WebSocket from 'ws';
import { connectControl, type HeldNetmap } from '../control-connection';
import { pinnedBrokerAgent } from '../pinned-agent';
import { nowMs } from '../stats';
import type { BenchDevice, ClientCommand, ClientReply } from './messages';

const send = (m: ClientReply) => process.send?.(m);
const CONNECT_CONCURRENCY = 64;
/**
 * One client in this many inflates and schema-checks its first snapshot; the others read its head
 * (checking a 10,000-peer snapshot costs this one process a few hundred ms).
 */
const VERIFY_EVERY = 1000;

interface Expectation {
  id: number;
  kind: 'join' | 'remove';
  publicKey?: string;
  deviceId?: string;
  /** Per client, when the frame carrying the change arrived (checked before it counts). */
  times: Map<number, number>;
  /** Per client, the frames naming the changed device, with when each arrived: checked in `settle`. */
  candidates: Map<number, Array<{ text: string; at: number }>>;
  /** Clients connected when the change was made: each must see it. */
  expected: number;
  timer: NodeJS.Timeout;
}

const sockets: WebSocket[] = [];
/** Per client, the netmap it holds: a reconnection resumes from it, as an agent's does. */
const held: HeldNetmap[] = [];
let devices: BenchDevice[] = [];
const expectations = new Map<number, Expectation>();

/** Wants not yet answered: client index → peer id → when the want was sent. */
const wantsOpen = new Map<number, Map<string, number>>();
let wantsLeft = 0;
let wantResult = { times: [] as number[], relays: 0, punches: 0 };
let wantTimer: NodeJS.Timeout | undefined;

/**
 * A frame reaches one of the simulated devices. An awaited change is stamped when its frame
 * arrives and schema-checked once every client has one (`settle`): parsed on arrival, the one
 * process simulating 10,000 devices parsed them one after another (~80 µs each), and the last
 * device's stamp carried the other 9,999 devices' parsing, which each agent does on its own CPU.
 */
function onMessage(index: number, text: string): void {
  if (expectations.size === 0 && wantsLeft === 0) return;
  const at = nowMs();
  for (const e of expectations.values()) {
    if (e.times.has(index)) continue;
    const named = e.kind === 'join' ? e.publicKey : e.deviceId;
    if (named === undefined || !text.includes(named)) continue;
    const frames = e.candidates.get(index);
    if (frames) frames.push({ text, at });
    else e.candidates.set(index, [{ text, at }]);
    if (e.times.size + e.candidates.size >= e.expected) settle(e);
  }
  if (wantsLeft === 0) return;
  const msg = ServerMessage.safeParse(JSON.parse(text));
  if (!msg.success) return;
  const m = msg.data;
  if (m.type === 'relay' || m.type === 'punch') onPath(index, m.peerId, m.type, at);
}

/** Whether a frame carries the awaited change: a delta, valid by its schema, upserting or removing it. */
function carries(e: Expectation, text: string): boolean {
  const msg = ServerMessage.safeParse(JSON.parse(text));
  if (!msg.success || msg.data.type !== 'delta') return false;
  const m = msg.data;
  return e.kind === 'join'
    ? m.upsert.some((p) => p.publicKey === e.publicKey)
    : m.remove.includes(e.deviceId ?? '');
}

/** Stamps each client with its first frame that carries the change: the others wait for another frame. */
function verify(e: Expectation): void {
  for (const [index, frames] of e.candidates) {
    const first = frames.find((f) => carries(e, f.text));
    if (first) e.times.set(index, first.at);
  }
  e.candidates.clear();
}

function settle(e: Expectation): void {
  verify(e);
  if (e.times.size >= e.expected) report(e);
}

/** The first `relay` or `punch` for a peer this client wanted answers the want. */
function onPath(index: number, peerId: string, type: 'relay' | 'punch', at: number): void {
  const open = wantsOpen.get(index);
  const sentAt = open?.get(peerId);
  if (open === undefined || sentAt === undefined) return;
  open.delete(peerId);
  wantResult.times.push(at - sentAt);
  if (type === 'relay') wantResult.relays++;
  else wantResult.punches++;
  if (--wantsLeft === 0) reportWants();
}

function reportWants(): void {
  clearTimeout(wantTimer);
  const { times, relays, punches } = wantResult;
  send({ kind: 'wanted', times, missing: wantsLeft, relays, punches });
  wantsOpen.clear();
  wantsLeft = 0;
  wantResult = { times: [], relays: 0, punches: 0 };
}

function sendWants(m: Extract<ClientCommand, { cmd: 'want' }>): void {
  wantResult = { times: [], relays: 0, punches: 0 };
  const ready: Array<{ ws: WebSocket; text: string; index: number; peerId: string }> = [];
  for (const { index, peerId } of m.wants) {
    const ws = sockets[index];
    if (ws?.readyState !== WebSocket.OPEN) continue;
    const want: ClientMessage = { type: 'want-path', peerId };
    ready.push({ ws, text: JSON.stringify(want), index, peerId });
  }
  // Wants that cannot be sent count as missing, as do those never answered.
  wantsLeft = m.wants.length;
  wantTimer = setTimeout(reportWants, m.timeoutMs);
  // All at once, as after every device had packets for its peers at the same moment.
  for (const w of ready) {
    const open = wantsOpen.get(w.index) ?? new Map<string, number>();
    wantsOpen.set(w.index, open);
    open.set(w.peerId, nowMs());
    w.ws.send(w.text);
  }
}

function report(e: Expectation): void {
  clearTimeout(e.timer);
  verify(e);
  expectations.delete(e.id);
  send({ kind: 'arrivals', id: e.id, times: [...e.times.values()], missing: e.expected - e.times.size });
}

async function connectOne(
  index: number,
  device: BenchDevice,
  url: string,
  agent: HttpsAgent,
  brokerPublicKey: string,
): Promise<{ bytes: number; resumed: boolean }> {
  held[index] ??= { serial: null, token: null };
  const { ws, snapshotBytes, resumed } = await connectControl(
    device,
    url,
    agent,
    brokerPublicKey,
    { onFrame: (data) => onMessage(index, data.toString('utf8')) },
    held[index],
    index % VERIFY_EVERY === 0 && held[index].serial === null,
  );
  sockets[index] = ws;
  return { bytes: snapshotBytes, resumed };
}

/** Heartbeats are sent in this many slices of the clients, one slice per interval / HEARTBEAT_SLICES. */
const HEARTBEAT_SLICES = 15;

/**
 * Heartbeats for every open client (the broker closes connections silent for 3 intervals), spread
 * over the interval as independent agents' are. All at once, 10,000 pings every 15 s landed in
 * some changes' measuring windows and not others, and moved CPU per change by tens of percent.
 */
function startHeartbeats(): void {
  let slice = 0;
  const ping = () => {
    for (let i = slice; i < sockets.length; i += HEARTBEAT_SLICES) {
      const ws = sockets[i];
      if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
    }
    slice = (slice + 1) % HEARTBEAT_SLICES;
  };
  setInterval(ping, HEARTBEAT_INTERVAL_MS / HEARTBEAT_SLICES).unref();
}

async function connectAll(m: Extract<ClientCommand, { cmd: 'connect' }>): Promise<void> {
  const agent = pinnedBrokerAgent(m.certPem);
  devices = m.devices;
  const started = nowMs();
  let next = 0;
  let done = 0;
  let failed = 0;
  let bytes = 0;
  // Heartbeats start with the first client: connecting thousands takes longer than 3 intervals.
  startHeartbeats();
  const worker = async () => {
    while (next < m.devices.length) {
      const i = next++;
      try {
        // Not `bytes += await …`: that reads `bytes` before awaiting and loses the other workers' sums.
        const got = await connectOne(i, m.devices[i]!, m.url, agent, m.brokerPublicKey);
        bytes += got.bytes;
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

/**
 * Every client drops its connection at once, then reconnects as an agent does after losing its
 * broker: after its first jittered backoff delay (proto Backoff: 250–500 ms), retrying failures with
 * the following delays; no cap on how many connect at the same time.
 */
async function storm(m: Extract<ClientCommand, { cmd: 'storm' }>): Promise<void> {
  const agent = pinnedBrokerAgent(m.certPem);
  const started = nowMs();
  const deadline = started + m.timeoutMs;
  for (const ws of sockets) ws?.terminate();
  let count = 0;
  let failed = 0;
  let retries = 0;
  const retryReasons: Record<string, number> = {};
  let bytes = 0;
  let resumed = 0;
  let lastAt = started;
  await Promise.all(
    devices.map(async (device, i) => {
      const backoff = new Backoff();
      for (;;) {
        await sleep(backoff.next());
        try {
          const got = await connectOne(i, device, m.url, agent, m.brokerPublicKey);
          bytes += got.bytes;
          if (got.resumed) resumed++;
          count++;
          lastAt = nowMs();
          if (count % 1000 === 0) send({ kind: 'progress', connected: count });
          return;
        } catch (err) {
          if (nowMs() >= deadline) {
            if (++failed <= 3)
              console.error(`client ${i}: ${err instanceof Error ? err.message : String(err)}`);
            return;
          }
          retries++;
          const reason = err instanceof Error ? err.message : String(err);
          retryReasons[reason] = (retryReasons[reason] ?? 0) + 1;
        }
      }
    }),
  );
  agent.destroy();
  send({
    kind: 'stormed',
    count,
    failed,
    retries,
    retryReasons,
    resumed,
    snapshotBytes: bytes,
    elapsedMs: lastAt - started,
  });
}

process.on('message', (m: ClientCommand) => {
  if (m.cmd === 'connect') {
    connectAll(m).catch((err: unknown) => send({ kind: 'error', message: String(err) }));
  } else if (m.cmd === 'want') {
    sendWants(m);
  } else if (m.cmd === 'storm') {
    storm(m).catch((err: unknown) => send({ kind: 'error', message: String(err) }));
  } else if (m.cmd === 'expect') {
    const e: Expectation = {
      id: m.id,
      kind: m.kind,
      publicKey: m.publicKey,
      deviceId: m.deviceId,
      times: new Map(),
      candidates: new Map(),
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
