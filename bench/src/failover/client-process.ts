/**
 * Many simulated devices (SimDevice) on three broker instances. Records when each expected change
 * arrives at each device, and, once armed for a failover, when each device of the victim broker
 * lost its connection and when it had a snapshot from another broker; observer devices parse every
 * delta for the victim's devices' online state.
 */
import { HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import { pinnedBrokerAgent } from '../pinned-agent';
import { nowMs } from '../stats';
import type { ClientCommand, ClientReply, FailoverDevice, ObserverView } from './messages';
import { SimDevice } from './sim-device';

const send = (m: ClientReply) => process.send?.(m);
const CONNECT_CONCURRENCY = 64;

interface Expectation {
  id: number;
  marker: string;
  waiting: Set<number>;
  times: Array<{ at: number; broker: number }>;
  timer: NodeJS.Timeout;
}

interface Failover {
  victims: Map<number, FailoverDevice>;
  left: number;
  collateral: number;
  failures: Record<string, number>;
  cpu: NodeJS.CpuUsage;
  timer: NodeJS.Timeout;
}

/** Observer index → victim device id → when it saw that device offline / online again. */
interface Observing {
  victimIds: Set<string>;
  seen: Map<number, Map<string, { off?: number; on?: number }>>;
}

let devices: SimDevice[] = [];
const expectations = new Map<number, Expectation>();
const readyWaiters = new Map<number, () => void>();
let failover: Failover | null = null;
let observing: Observing | null = null;

function placement(): number[] {
  const counts = [0, 0, 0];
  for (const d of devices) if (d.ready) counts[d.broker] = (counts[d.broker] ?? 0) + 1;
  return counts;
}

function onReady(d: SimDevice): void {
  readyWaiters.get(d.index)?.();
  readyWaiters.delete(d.index);
  const rec = failover?.victims.get(d.index);
  if (failover && rec && rec.closedAt !== null && rec.readyAt === null) {
    rec.readyAt = nowMs();
    rec.openAt = d.openAt;
    rec.challengeAt = d.challengeAt;
    rec.attempts = d.attempts;
    rec.resumed = d.resumed;
    rec.broker = d.broker;
    if (--failover.left === 0) reportFailover();
  }
}

function onDrop(d: SimDevice): void {
  if (!failover) return;
  const rec = failover.victims.get(d.index);
  if (rec) rec.closedAt ??= nowMs();
  else failover.collateral++;
}

/** Failed attempts (message → count) outside a failover: setup moves, retried. */
let setupFailures: Record<string, number> = {};

function onFailure(_d: SimDevice, reason: string): void {
  const into = failover ? failover.failures : setupFailures;
  into[reason] = (into[reason] ?? 0) + 1;
}

function onDelta(d: SimDevice, data: Buffer): void {
  const seen = observing?.seen.get(d.index);
  if (expectations.size === 0 && !seen) return;
  const at = nowMs();
  const text = data.toString('utf8');
  for (const e of expectations.values()) {
    if (!e.waiting.has(d.index) || !text.includes(e.marker)) continue;
    e.waiting.delete(d.index);
    e.times.push({ at, broker: d.broker });
    if (e.waiting.size === 0) reportArrivals(e);
  }
  if (seen && observing) {
    const delta = JSON.parse(text) as { upsert?: Array<{ id: string; online: boolean }> };
    for (const p of delta.upsert ?? []) {
      if (!observing.victimIds.has(p.id)) continue;
      const s = seen.get(p.id) ?? {};
      if (!p.online) s.off ??= at;
      else if (s.off !== undefined) s.on ??= at;
      seen.set(p.id, s);
    }
  }
}

function reportArrivals(e: Expectation): void {
  clearTimeout(e.timer);
  expectations.delete(e.id);
  send({ kind: 'arrivals', id: e.id, times: e.times, missing: e.waiting.size });
}

function reportFailover(): void {
  const f = failover;
  if (!f) return;
  clearTimeout(f.timer);
  failover = null;
  const cpu = process.cpuUsage(f.cpu);
  send({
    kind: 'failover',
    devices: [...f.victims.values()],
    collateral: f.collateral,
    failures: f.failures,
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
}

function reportObserved(): void {
  const observers: ObserverView[] = [...(observing?.seen ?? [])].map(([index, seen]) => ({
    broker: devices[index]!.broker,
    offlineAt: [...seen.values()].flatMap((s) => (s.off === undefined ? [] : [s.off])),
    onlineAgainAt: [...seen.values()].flatMap((s) => (s.on === undefined ? [] : [s.on])),
  }));
  observing = null;
  send({ kind: 'observed', observers });
}

/** Runs `move` for each device with a bounded number of handshakes in flight; resolves when all are ready. */
async function connectEach(list: SimDevice[], move: (d: SimDevice) => void, timeoutMs: number) {
  const started = nowMs();
  setupFailures = {};
  let nextIndex = 0;
  let done = 0;
  const worker = async () => {
    while (nextIndex < list.length) {
      const d = list[nextIndex++]!;
      const ready = new Promise<void>((resolve) => readyWaiters.set(d.index, resolve));
      move(d);
      await ready;
      if (++done % 500 === 0) send({ kind: 'progress', ready: done });
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`devices not ready after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker)), timeout]);
  } finally {
    clearTimeout(timer);
  }
  send({
    kind: 'connected',
    count: done,
    elapsedMs: nowMs() - started,
    placement: placement(),
    failures: setupFailures,
  });
}

function handle(m: ClientCommand): void {
  switch (m.cmd) {
    case 'start': {
      const io = {
        brokers: m.brokers,
        agent: pinnedBrokerAgent(m.certPem),
        brokerPublicKey: m.brokerPublicKey,
        jitterMs: m.jitterMs,
        onReady,
        onDrop,
        onFailure,
        onDelta,
      };
      devices = m.devices.map((spec, i) => new SimDevice(i, spec, io));
      // One heartbeat sweep for every ready device: the broker closes connections silent for 3 intervals.
      setInterval(() => {
        for (const d of devices) d.send({ type: 'ping', t: Date.now() });
      }, HEARTBEAT_INTERVAL_MS).unref();
      send({ kind: 'started' });
      return;
    }
    case 'connect':
      connectEach(devices, (d) => d.moveTo(m.via), m.timeoutMs).catch(fail);
      return;
    case 'rehome':
      connectEach(
        devices.filter((d) => d.broker !== d.home),
        (d) => d.moveTo(d.home),
        m.timeoutMs,
      ).catch(fail);
      return;
    case 'expect': {
      const waiting = new Set(devices.filter((d) => d.ready && d.index !== m.exclude).map((d) => d.index));
      const e: Expectation = {
        id: m.id,
        marker: m.marker,
        waiting,
        times: [],
        timer: setTimeout(() => reportArrivals(e), m.timeoutMs),
      };
      expectations.set(m.id, e);
      send({ kind: 'armed', id: m.id });
      return;
    }
    case 'endpoints': {
      const at = nowMs();
      if (devices[m.index]?.send({ type: 'endpoints', endpoints: m.endpoints })) send({ kind: 'sent', at });
      else fail(new Error(`device ${m.index} is not connected`));
      return;
    }
    case 'arm-failover': {
      const victims = new Map<number, FailoverDevice>();
      const victimIds = new Set<string>();
      for (const d of devices) {
        if (!d.ready || d.broker !== m.victim) continue;
        victims.set(d.index, {
          index: d.index,
          closedAt: null,
          readyAt: null,
          openAt: null,
          challengeAt: null,
          attempts: 0,
          resumed: false,
          broker: m.victim,
        });
        victimIds.add(d.spec.deviceId);
      }
      failover = {
        victims,
        left: victims.size,
        collateral: 0,
        failures: {},
        cpu: process.cpuUsage(),
        timer: setTimeout(reportFailover, m.timeoutMs),
      };
      observing = { victimIds, seen: new Map(m.observers.map((i) => [i, new Map()])) };
      send({ kind: 'armed', id: 0 });
      if (victims.size === 0) reportFailover();
      return;
    }
    case 'observed':
      reportObserved();
      return;
    case 'placement':
      send({ kind: 'placement', placement: placement() });
      return;
    case 'stop':
      for (const d of devices) d.stop();
      process.exit(0);
  }
}

function fail(err: unknown): void {
  send({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
}

process.on('message', handle);
process.on('disconnect', () => process.exit(0));
