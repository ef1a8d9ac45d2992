/**
 * One broker instance in its own process (the victim is SIGKILLed). Logs go to this process's
 * stdout, which the orchestrator points at a file. argv: JSON of BrokerArgs.
 */
import { readFileSync } from 'node:fs';
import { startBroker } from '@trellis/broker';
import type { BrokerArgs, BrokerCommand, BrokerReply } from './messages';

const send = (m: BrokerReply) => process.send?.(m);

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as BrokerArgs;
  const broker = await startBroker({
    dataDir: a.dataDir,
    databaseUrl: a.databaseUrl,
    host: '127.0.0.1',
    // Every simulated device connects from 127.0.0.1.
    maxConnectionsPerAddress: 0,
    port: 0,
    logLevel: a.logLevel,
    adminSocket: false,
    ...(a.tlsCertFile && a.tlsKeyFile ? { tlsCertFile: a.tlsCertFile, tlsKeyFile: a.tlsKeyFile } : {}),
  });
  process.on('message', async (m: BrokerCommand) => {
    if (m.cmd === 'stats') {
      const cpu = process.cpuUsage();
      const connected = (await broker.metrics.connectedDevices.get()).values.reduce((n, v) => n + v.value, 0);
      send({ kind: 'stats', connected, rss: process.memoryUsage().rss, cpuUs: cpu.user + cpu.system });
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
    certFile: broker.certFile,
    brokerPublicKey: broker.brokerPublicKey,
    ...(broker.bootstrap ? { setupKey: broker.bootstrap.setupKey } : {}),
  });
}

main().catch((err: unknown) => {
  send({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
