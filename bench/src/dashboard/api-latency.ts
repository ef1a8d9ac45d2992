import { API_PATHS } from '@trellis/proto';
import type { BrokerHttpClient } from '../http-client';
import { percentile } from '../stats';
import { deviceName } from './fill';

export interface LatencyRow {
  what: string;
  p50: number;
  p95: number;
  p99: number;
}

async function timed(http: BrokerHttpClient, path: string, times: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const t0 = performance.now();
    await http.call('GET', path);
    samples.push(performance.now() - t0);
  }
  return samples;
}

/**
 * Each request `times` times in a row, one at a time (what one dashboard asks), after a few to warm
 * up. The baseline is the broker's cheapest authenticated answer (who am I) in the same run.
 */
export async function measureApi(
  http: BrokerHttpClient,
  count: number,
  times: number,
): Promise<LatencyRow[]> {
  const list = API_PATHS.deviceList;
  const requests: Array<[string, string]> = [
    ['baseline: who am I (session)', API_PATHS.session],
    ['device list, first page (200)', `${list}?limit=200`],
    ['device list, a page deep in', `${list}?limit=200&after=${deviceName(Math.max(1, count - 300))}`],
    ['device list, search', `${list}?limit=200&q=${deviceName(count).slice(0, -1)}`],
    ['device list, online only', `${list}?limit=200&status=online`],
    ['one device', `${API_PATHS.devices}/${deviceName(Math.ceil(count / 2))}`],
  ];
  const rows: LatencyRow[] = [];
  for (const [what, path] of requests) {
    await timed(http, path, 5);
    const s = await timed(http, path, times);
    rows.push({ what, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99) });
  }
  return rows;
}
