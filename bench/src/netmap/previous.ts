/**
 * The README's "Current figures" table of `pnpm bench netmap`, read back so that a run prints its
 * figures beside the ones recorded there (issue 15: "in one table with the previous figures from
 * the README beside them").
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, printTable } from '../stats';
import type { SizeResult } from './report';

export interface PreviousRow {
  devices: number;
  enrollPerSec: number;
  connectSec: number;
  joinP50: number;
  joinP99: number;
  rssPerDeviceKB: number;
}

const HEADER = '| devices | enroll/s | connect all | join p50 / p99 |';

/** Rows of the README's netmap table (the first table whose header starts with HEADER). */
export function previousRows(readme: string): PreviousRow[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.startsWith(HEADER));
  if (start < 0) return [];
  const rows: PreviousRow[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').map((c) => c.trim());
    const num = (s: string | undefined) => Number((s ?? '').replace(/[^0-9.]/g, ''));
    const [p50, p99] = (cells[4] ?? '').split('/').map((s) => num(s));
    rows.push({
      devices: num(cells[1]),
      enrollPerSec: num(cells[2]),
      connectSec: num(cells[3]),
      joinP50: p50 ?? Number.NaN,
      joinP99: p99 ?? Number.NaN,
      rssPerDeviceKB: num(cells[6]),
    });
  }
  return rows;
}

/** Issue 15's goals at 10,000 devices. */
const GOALS = { connectSec: 60, enrollPerSec: 500, joinP99: 300, rssPerDeviceKB: 20 };

/** One table: each size's figures, the README's beside them, and whether the goals hold. */
export function printAgainstPrevious(results: SizeResult[], readmeDir: string): void {
  const file = join(readmeDir, 'README.md');
  const previous = existsSync(file) ? previousRows(readFileSync(file, 'utf8')) : [];
  const pair = (now: number, before: number | undefined) =>
    before === undefined || !Number.isFinite(before) ? `${fmt(now)} (-)` : `${fmt(now)} (${fmt(before)})`;
  printTable(
    'against the README (in brackets) and issue 15 (goals at 10,000: connect < 60 s, enroll >= 500/s, fan-out p99 < 300 ms, RSS < 20 KB per device with the proxy)',
    ['devices', 'connect s', 'enroll/s', 'join p50', 'join p99', 'RSS/dev KB', 'goals'],
    results.map((r) => {
      const p = previous.find((row) => row.devices === r.n);
      const rss = r.rssPerDeviceKB + (r.proxyRssPerDeviceKB ?? 0);
      const joinP99 = percentile(r.join, 99);
      const missed = [
        r.connectSec >= GOALS.connectSec && 'connect',
        r.enrollPerSec < GOALS.enrollPerSec && 'enroll',
        joinP99 >= GOALS.joinP99 && 'fan-out',
        rss >= GOALS.rssPerDeviceKB && 'RSS',
      ].filter((m) => m !== false);
      return [
        r.n,
        pair(r.connectSec, p?.connectSec),
        pair(r.enrollPerSec, p?.enrollPerSec),
        pair(percentile(r.join, 50), p?.joinP50),
        pair(joinP99, p?.joinP99),
        pair(rss, p?.rssPerDeviceKB),
        missed.length === 0 ? 'all met' : `missed: ${missed.join(', ')}`,
      ];
    }),
  );
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
