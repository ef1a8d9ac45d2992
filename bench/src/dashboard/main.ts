/**
 * `pnpm bench dashboard [--devices 5000] [--times 200]`
 * One broker on PostgreSQL serving the built dashboard, `--devices` devices in one account.
 * Measures the API the dashboard uses (p50/p95/p99 of the device list's pages and of one device,
 * against the cheapest authenticated call in the same run), then in Debian's Chromium the time from
 * navigation to a drawn device list (against a page that loads nothing) and from a change to the open
 * list showing it. Goals (issue 13): API p95 < 100 ms, list drawn < 1 s, change shown < 1 s.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_PATHS, type LoginResponse } from '@trellis/proto';
import { next } from '../child-ipc';
import { withDatabase } from '../database';
import { BrokerHttpClient } from '../http-client';
import type { BrokerReply } from '../netmap/messages';
import { printTable } from '../stats';
import { type LatencyRow, measureApi } from './api-latency';
import { launch, measureLiveChange, measureNavigation, signedInTab } from './browser';
import { fillDevices } from './fill';

function arg(flag: string, fallback: number): number {
  const a = process.argv.slice(2);
  const i = a.indexOf(flag);
  const value = i >= 0 ? Number(a[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} takes a whole number >= 1`);
  return value;
}

const table = (title: string, rows: LatencyRow[], goal: string) =>
  printTable(
    `${title} — goal: ${goal}`,
    ['what', 'p50 ms', 'p95 ms', 'p99 ms'],
    rows.map((r) => [r.what, r.p50, r.p95, r.p99]),
  );

async function main(): Promise<void> {
  const count = arg('--devices', 5000);
  const times = arg('--times', 200);
  await withDatabase(`trellis_bench_dashboard_${process.pid}`, async (databaseUrl) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
    // The netmap bench's broker process: it serves the dashboard from apps/dashboard/dist.
    const broker = fork(join(__dirname, '..', 'netmap', 'broker-process.js'), [dataDir, databaseUrl]);
    try {
      const ready = await next<BrokerReply, 'ready'>(broker, 'ready');
      process.stdout.write(`broker ${ready.url}; filling ${count} devices…\n`);
      await fillDevices(databaseUrl, count);
      const http = new BrokerHttpClient(ready.url, ready.certPem);
      const login = await http.call<LoginResponse>('POST', API_PATHS.login, {
        email: ready.ownerEmail,
        password: ready.ownerPassword,
      });
      http.setToken(login.token);
      table(
        `API, ${times} requests each, one at a time`,
        await measureApi(http, count, times),
        'p95 < 100 ms',
      );
      const browser = await launch(ready.certPem);
      try {
        const page = await signedInTab(browser, ready.url, ready.ownerEmail, ready.ownerPassword);
        table(
          'Chromium, 10 navigations',
          await measureNavigation(page, ready.url, count, 10),
          'p95 < 1,000 ms',
        );
        table('Chromium, 20 changes', await measureLiveChange(page, http, 20), 'p95 < 1,000 ms');
      } finally {
        await browser.close();
        http.close();
      }
    } finally {
      broker.send({ cmd: 'stop' });
      await new Promise((resolve) => broker.once('exit', resolve));
    }
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
