/**
 * The broker under test, in its own process (its CPU measured alone), with its admin socket on:
 * policies, tags and setup keys go through `<dataDir>/admin.sock` as `trellis-broker` sends them.
 * argv: dataDir [databaseUrl] (no URL: the embedded database).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startBroker } from '@trellis/broker';
import type { BrokerCommand, BrokerReply } from './messages';

const send = (m: BrokerReply) => process.send?.(m);

async function main(): Promise<void> {
  const [dataDir, databaseUrl] = process.argv.slice(2);
  if (!dataDir) throw new Error('usage: broker-process DATA_DIR [DATABASE_URL]');
  const broker = await startBroker({
    dataDir,
    ...(databaseUrl ? { databaseUrl } : {}),
    host: '127.0.0.1',
    // Every simulated device connects from 127.0.0.1.
    maxConnectionsPerAddress: 0,
    port: 0,
    logLevel: 'error',
    adminSocket: true,
    // No reflector traffic: nothing here sends UDP, and it would only add noise.
    reflectorPort: false,
  });
  if (!broker.bootstrap) throw new Error('benchmark needs a fresh database');
  // How long the event loop is blocked at worst (a blocked broker answers nobody, pings included).
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on('message', async (m: BrokerCommand) => {
    if (m.cmd === 'stats') {
      const cpu = process.cpuUsage();
      const connected = (await broker.metrics.connectedDevices.get()).values.reduce((n, v) => n + v.value, 0);
      const loopMaxMs = loop.max / 1e6;
      loop.reset();
      send({
        kind: 'stats',
        rss: process.memoryUsage().rss,
        cpuUs: cpu.user + cpu.system,
        connected,
        loopMaxMs,
      });
    } else if (m.cmd === 'stop') {
      await broker.close();
      process.exit(0);
    }
  });
  // An orchestrator that died without stopping us must not leave a broker behind.
  process.on('disconnect', () => process.exit(0));
  send({
    kind: 'ready',
    url: broker.url,
    certPem: readFileSync(broker.certFile, 'utf8'),
    brokerPublicKey: broker.brokerPublicKey,
    account: broker.bootstrap.account,
    adminSocket: join(dataDir, 'admin.sock'),
  });
}

main().catch((err: unknown) => {
  send({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
