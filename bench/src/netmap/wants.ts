import type { ChildProcess } from 'node:child_process';
import { next } from '../child-ipc';
import type { BenchDevice, ClientReply } from './messages';
import type { SizeResult } from './report';
import { type BrokerStats, cpuUsOf, type NetmapBench } from './setup';

/** Wants sent one after the other on a quiet broker: the latency without the burst's queue. */
const SINGLE_WANTS = 20;

type Want = { index: number; peerId: string };

/** Each device wants paths to `k` distinct random peers (fewer when the account is smaller). */
function pickWants(devices: BenchDevice[], k: number): { wants: Want[]; pairs: Set<number> } {
  const n = devices.length;
  const per = Math.min(k, n - 1);
  const wants: Want[] = [];
  const pairs = new Set<number>();
  for (let i = 0; i < n; i++) {
    const peers = new Set<number>();
    while (peers.size < per) {
      const j = Math.floor(Math.random() * n);
      if (j !== i) peers.add(j);
    }
    for (const j of peers) {
      wants.push({ index: i, peerId: devices[j]!.deviceId });
      pairs.add(Math.min(i, j) * n + Math.max(i, j));
    }
  }
  return { wants, pairs };
}

/** `count` wants for pairs no one wanted yet (`taken`, keyed as pickWants keys them). */
function pickFreshWants(devices: BenchDevice[], taken: Set<number>, count: number): Want[] {
  const n = devices.length;
  const wants: Want[] = [];
  for (let tries = 0; wants.length < count && tries < count * 100; tries++) {
    const i = Math.floor(Math.random() * n);
    const j = Math.floor(Math.random() * n);
    const key = Math.min(i, j) * n + Math.max(i, j);
    if (i === j || taken.has(key)) continue;
    taken.add(key);
    wants.push({ index: i, peerId: devices[j]!.deviceId });
  }
  return wants;
}

/**
 * Every device wants paths to `wanted` random peers at once (time to its `relay` or `punch`, broker
 * CPU per pair, pairs held, RSS against `before`), then SINGLE_WANTS fresh pairs one at a time.
 */
export async function measureWants(
  bench: NetmapBench,
  clients: ChildProcess,
  devices: BenchDevice[],
  wanted: number,
  before: BrokerStats,
): Promise<
  Pick<
    SizeResult,
    | 'wantedPairs'
    | 'allWantedPairs'
    | 'want'
    | 'wantSingle'
    | 'wantMissing'
    | 'wantRelays'
    | 'wantPunches'
    | 'cpuPerWantedPairMs'
    | 'pairsHeld'
    | 'rssPerDeviceAfterWantsKB'
    | 'relayAllocations'
  >
> {
  const n = devices.length;
  // Wanted pairs: long after every device came online, so any side no reflector heard from
  // (none here: the clients send no UDP) counts as UDP-blocked and the pair goes to the relay.
  const { wants, pairs } = pickWants(devices, wanted);
  const wantedPairs = pairs.size;
  console.log(`[${n}] ${wants.length} want-path at once (${wantedPairs} pairs)`);
  const relay0 = await bench.relayStats();
  const w0 = await bench.stats(false);
  clients.send({ cmd: 'want', wants, timeoutMs: 60_000 });
  const answered = await next<ClientReply, 'wanted'>(clients, 'wanted');
  const w1 = await bench.stats(false);
  const relay1 = await bench.relayStats();
  const afterWants = await bench.stats();
  // The burst above measures its queue; one want at a time measures the path itself.
  const wantSingle: number[] = [];
  let singleMissing = 0;
  const singles = pickFreshWants(devices, pairs, SINGLE_WANTS);
  for (const w of singles) {
    clients.send({ cmd: 'want', wants: [w], timeoutMs: 10_000 });
    const one = await next<ClientReply, 'wanted'>(clients, 'wanted');
    wantSingle.push(...one.times);
    singleMissing += one.missing;
  }
  return {
    wantedPairs,
    allWantedPairs: wantedPairs + singles.length,
    want: answered.times,
    wantSingle,
    wantMissing: answered.missing + singleMissing,
    wantRelays: answered.relays,
    wantPunches: answered.punches,
    cpuPerWantedPairMs: cpuUsOf(w0, w1) / 1000 / wantedPairs,
    pairsHeld: afterWants.pathPairs,
    rssPerDeviceAfterWantsKB: (afterWants.rss - before.rss) / afterWants.connected / 1024,
    relayAllocations: relay1.allocated - relay0.allocated,
  };
}
