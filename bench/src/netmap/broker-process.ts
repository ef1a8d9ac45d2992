/**
 * The broker under test, in its own process so its RSS and CPU are measured alone.
 * argv: dataDir databaseUrl; env BENCH_PROXY_URL=<https URL> runs it behind HAProxy there
 * (--proxy-protocol --plain-http, haproxy-front), BENCH_TRACE=<seconds> prints its metrics that often (broker-trace),
 * BENCH_PROFILE=<dir> lets it record a CPU profile (broker-profile).
 */
import { readFileSync } from 'node:fs';
import { startBroker } from '@trellis/broker';
import { BrokerProfiler } from './broker-profile';
import { startBrokerTrace } from './broker-trace';
import type { BrokerCommand, BrokerReply } from './messages';

const send = (m: BrokerReply) => process.send?.(m);

async function main(): Promise<void> {
  const [dataDir, databaseUrl] = process.argv.slice(2);
  if (!dataDir || !databaseUrl) throw new Error('usage: broker-process DATA_DIR DATABASE_URL');
  const proxyUrl = process.env.BENCH_PROXY_URL;
  const broker = await startBroker({
    dataDir,
    databaseUrl,
    ...(proxyUrl ? { proxyProtocol: true, plainHttp: true, publicUrl: proxyUrl } : {}),
    host: '127.0.0.1',
    // Every simulated device connects from 127.0.0.1.
    maxConnectionsPerAddress: 0,
    port: 0,
    logLevel: 'error',
    adminSocket: false,
  });
  if (!broker.bootstrap) throw new Error('benchmark needs a fresh database');
  const traceSec = Number(process.env.BENCH_TRACE ?? 0);
  if (traceSec > 0) {
    const m = broker.metrics;
    startBrokerTrace(
      {
        connectedDevices: m.connectedDevices,
        admissionPending: m.admissionPending,
        admissionHeld: m.admissionHeld,
        connectionsRefused: m.connectionsRefused,
        netmapStarts: m.netmapStarts,
        resumesRefused: m.resumesRefused,
        offlineMarksHeld: m.offlineMarksHeld,
        netmapsHeld: m.netmapsHeld,
      },
      traceSec,
    );
  }
  const profileDir = process.env.BENCH_PROFILE;
  const profiler = profileDir ? new BrokerProfiler(profileDir) : undefined;
  process.on('message', async (m: BrokerCommand) => {
    if (m.cmd === 'stats') {
      // Without gc: a window whose CPU is measured must not include a forced full collection.
      if (m.gc) global.gc?.();
      const mem = process.memoryUsage();
      if (process.env.BENCH_DEBUG) console.error('broker memory', JSON.stringify(mem));
      const cpu = process.cpuUsage();
      const connected = (await broker.metrics.connectedDevices.get()).values.reduce((n, v) => n + v.value, 0);
      send({
        kind: 'stats',
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        connected,
        pathPairs: broker.pathPairs(),
      });
    } else if (m.cmd === 'profile-start') {
      if (!profiler) return send({ kind: 'error', message: 'BENCH_PROFILE is not set' });
      await profiler.start();
      send({ kind: 'profiling' });
    } else if (m.cmd === 'profile-stop') {
      if (!profiler) return send({ kind: 'error', message: 'BENCH_PROFILE is not set' });
      send({ kind: 'profiled', file: await profiler.stop(m.name) });
    } else if (m.cmd === 'stop') {
      await broker.close();
      process.exit(0);
    }
  });
  send({
    kind: 'ready',
    url: broker.url,
    port: broker.port,
    // Behind HAProxy the clients pin HAProxy's certificate; the orchestrator fills it in.
    certPem: broker.tls ? readFileSync(broker.certFile, 'utf8') : '',
    brokerPublicKey: broker.brokerPublicKey,
    ownerEmail: broker.bootstrap.ownerEmail,
    ownerPassword: broker.bootstrap.ownerPassword,
    setupKey: broker.bootstrap.setupKey,
  });
}

main().catch((err: unknown) => {
  send({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
