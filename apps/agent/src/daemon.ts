#!/usr/bin/env node
import type { Server } from 'node:http';
import { join } from 'node:path';
import { NftablesGatewayBackend, selectFirewallBackend } from '@trellis/firewall';
import { boundPort, serveMetrics } from '@trellis/metrics';
import { PortMappingClient } from '@trellis/portmap';
import pino from 'pino';
import { Agent } from './agent/agent';
import { AgentMetrics } from './agent/agent-metrics';
import { PeerGuard } from './agent/peer-guard';
import { type DaemonOptions, parseDaemonOptions } from './daemon-options';
import { MeshDns } from './dns/mesh-dns';
import { ExitNodeController } from './exit/exit-node-controller';
import { GatewayRole } from './gateway/gateway-role';
import { IpForward } from './gateway/ip-forward';
import { LinuxLanProbe } from './gateway/lan-probe';
import { IpcServer, isNamedPipe } from './ipc/ipc-server';
import { startPipeAuthority } from './ipc/pipe-auth-windows';
import { CandidateWatcher, localCandidates } from './platform/candidates';
import { selectPlatform } from './platform/select-platform';
import { StateStore } from './state/state-store';
import { PeerPins } from './trust/peer-pins';
import { LocalUiServer } from './ui/ui-server';
import { resolveOperator } from './ui/ui-token';
import { LocalCommandRunner } from './util/command-runner';

/**
 * trellisd: foreground daemon. Logs JSON lines to stdout; prints `trellisd ready` once the control
 * socket listens and `mesh applied` each time WireGuard matches a netmap. SIGTERM/SIGINT tear the
 * mesh down (interface, routes) and exit 0.
 */
async function main(): Promise<void> {
  let opts: DaemonOptions;
  try {
    opts = parseDaemonOptions(process.argv.slice(2));
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    if (code === 0) process.exit(0); // --help, --version
    process.stderr.write(`trellisd: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = pino({ level: opts.logLevel, base: { iface: opts.interfaceName } });
  const runner = new LocalCommandRunner();
  const platform = selectPlatform(process.platform, { ...opts, runner, logger });
  await platform.prepareStateDir();
  const backend = await platform.wireguard();
  const store = new StateStore(opts.stateDir);
  await store.init();
  const pins = await PeerPins.open(store.dir, { log: logger });
  if (opts.firewall === 'off') {
    logger.warn('--firewall off: the access policy is not enforced on this device; peers may open anything');
  }
  const firewall =
    opts.firewall === 'off' ? null : selectFirewallBackend(platform.os, platform.firewallOptions());
  // Made before the agent whose status it reads, so the guard can report to it.
  const metrics: AgentMetrics | undefined = opts.metricsListen
    ? new AgentMetrics({ status: () => agent.status(), firewallCounters: () => guard.firewallCounters() })
    : undefined;
  const guard: PeerGuard = new PeerGuard(pins, firewall, logger, metrics, (name) =>
    platform.interfaceOf(name),
  );
  const dns = await platform.resolver();
  if (opts.dns !== 'off') logger.info({ dns: opts.dns, resolver: dns.resolver?.kind ?? 'none' }, 'names');
  const linux = platform.os === 'linux';
  // The session's names follow the exit node; sessions come one after another.
  let sessionDns: MeshDns | null = null;
  // Forwarding needs the gateway firewall (nftables only today); without a firewall nothing forwards.
  const gatewayRole =
    linux && opts.firewall !== 'off'
      ? new GatewayRole(new NftablesGatewayBackend(), new IpForward(opts.stateDir), logger)
      : undefined;
  const exitRouting = platform.exitRouting;
  const exitNode = exitRouting
    ? new ExitNodeController({
        routing: exitRouting,
        wireguard: backend,
        dns: { followExitNode: (exit) => sessionDns?.followExitNode(exit) ?? Promise.resolve() },
        logger,
      })
    : undefined;
  const agent: Agent = new Agent({
    store,
    guard,
    backend,
    network: platform.network,
    logger,
    interfaceName: opts.interfaceName,
    listenPort: opts.listenPort,
    readCandidates: () => localCandidates(opts.interfaceName, opts.listenPort),
    recoverResolver: () => dns.recover(opts.interfaceName),
    ...(opts.dns === 'off'
      ? {}
      : {
          meshDns: (run) => {
            sessionDns = new MeshDns({
              interfaceName: opts.interfaceName,
              resolver: dns.resolver,
              logger,
              run,
            });
            return sessionDns;
          },
        }),
    watchCandidates: (onChange) => {
      const w = new CandidateWatcher(
        () => localCandidates(opts.interfaceName, opts.listenPort),
        onChange,
        2000,
        platform.networkEvents ?? undefined,
      );
      w.start();
      return () => w.stop();
    },
    ...(platform.networkEvents ? { watchNetwork: platform.networkEvents } : {}),
    ...(linux ? { lanProbe: new LinuxLanProbe(runner) } : {}),
    ...(gatewayRole ? { gatewayRole } : {}),
    ...(exitNode ? { exitNode } : {}),
    ...(opts.portMapping
      ? { portMapping: (port: number) => new PortMappingClient({ internalPort: port }) }
      : {}),
  });
  // Windows' pipe is open to all users: only those who can read the daemon's key may use it.
  const pipeAuth = isNamedPipe(opts.socket) ? await startPipeAuthority(opts.stateDir, runner, logger) : null;
  const ipc = new IpcServer(
    opts.socket,
    async (req) => {
      switch (req.op) {
        case 'status':
          return agent.status();
        case 'up':
          return { ok: true, ...(await agent.up(req)) };
        case 'wait-sign-in':
          return { ok: true, message: await agent.waitForSignIn() };
        case 'down':
          return { ok: true, message: await agent.down() };
        case 'rotate-key':
          return agent.rotateKey();
        case 'set':
          return { ok: true, message: await agent.set(req.prefs) };
      }
    },
    logger,
    pipeAuth?.gate ?? null,
  );

  // Resolved before the mesh comes up: an unknown operator stops trellisd with nothing to undo.
  const operator = opts.uiListen && opts.operator ? await resolveOperator(opts.operator) : null;
  const ui = opts.uiListen
    ? new LocalUiServer({
        ...opts.uiListen,
        webDir: join(__dirname, 'ui-web'),
        tokenFile: opts.uiTokenFile,
        operator,
        agent,
        logger,
      })
    : null;

  let metricsServer: Server | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await ipc.close().catch(() => undefined);
    pipeAuth?.stop();
    await ui?.close().catch(() => undefined);
    metricsServer?.close();
    await agent.shutdown().catch((err: Error) => logger.error({ err: err.message }, 'teardown failed'));
    logger.info('trellisd stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  // Before the mesh comes up: an address in use stops trellisd with nothing to tear down.
  if (metrics && opts.metricsListen) {
    const { host, port } = opts.metricsListen;
    metricsServer = await serveMetrics(metrics, host, port).catch((err: Error) => {
      throw new Error(`--metrics-listen ${host}:${port}: ${err.message}`);
    });
    const at = `${host.includes(':') ? `[${host}]` : host}:${boundPort(metricsServer)}`;
    logger.info({ metrics: `http://${at}/metrics` }, 'serving metrics');
  }
  await agent.start();
  await ipc.listen();
  // The mesh matters more than the UI: a UI that cannot listen is logged, not fatal.
  await ui?.listen().catch((err: Error) => logger.error({ err: err.message }, 'the local UI is not served'));
  logger.info(
    { socket: opts.socket, stateDir: opts.stateDir, backend: backend.kind, listenPort: opts.listenPort },
    'trellisd ready',
  );
}

main().catch((err: Error) => {
  process.stderr.write(`trellisd: ${err.message}\n`);
  process.exit(1);
});
