import type { Server } from 'node:http';
import { boundPort, serveMetrics } from '@trellis/metrics';
import { type BrokerTrust, formatEndpoint, type PortRange, type RelayTcpInfo } from '@trellis/proto';
import { defaultSans, loadOrCreateTls } from '@trellis/tls';
import type { Logger } from 'pino';
import { DEFAULT_ALLOCATION_LIMITS } from './allocation/allocation-core';
import { BrokerLink } from './broker/broker-link';
import { brokerTlsOptions, relayControlUrl } from './broker/broker-url';
import type { KernelForwardingMode } from './kernel/kernel-path';
import { NetdevPath } from './kernel/netdev-path';
import { RelayMetrics } from './metrics';
import { startRelayReflector } from './reflector/relay-reflector';
import { DEFAULT_ACCOUNT_PACKETS, Relay } from './relay';
import { TcpFallbackServer } from './tcp/tcp-fallback-server';
import { RELAY_VERSION } from './version';

export interface HostPort {
  host: string;
  port: number;
}

export interface RelayServiceConfig {
  /** Instances of one broker (base URLs), tried in this order. */
  brokers: string[];
  trust: BrokerTrust;
  token: string;
  name: string;
  /** UDP listen host. */
  listen: string;
  publicAddress: string;
  ports: PortRange;
  /** Null: no TCP fallback. Without publicUrl: wss://publicAddress:<listening port>. */
  tcp: { listen: HostPort; publicUrl?: string; certFile?: string; keyFile?: string } | null;
  stateDir: string;
  metricsListen: HostPort | null;
  /** UDP port of the relay's own endpoint reflector; null: none. */
  reflectorPort?: number | null;
  /** Bound pairs forwarded by the kernel (see KernelPath); auto: when permitted. Default off. */
  kernelForwarding?: KernelForwardingMode;
}

export interface RelayServiceHandle {
  relay: Relay;
  tcp?: { port: number; info: RelayTcpInfo };
  metricsPort?: number;
  /** Resolves if the broker refuses this relay for good (the process should exit non-zero). */
  fatal: Promise<Error>;
  close(): Promise<void>;
}

/** Starts every part; the data plane is up before the broker link is even tried. */
export async function startRelayService(
  config: RelayServiceConfig,
  log: Logger,
): Promise<RelayServiceHandle> {
  const tlsOptions = brokerTlsOptions(config.trust); // fails early on an unreadable CA file
  const kernel = await startKernelPath(config.kernelForwarding ?? 'off', log);
  const relay = new Relay({
    host: config.listen,
    ports: config.ports,
    limits: DEFAULT_ALLOCATION_LIMITS,
    accountPackets: DEFAULT_ACCOUNT_PACKETS,
    ...(kernel
      ? { kernel, onKernelError: (err: Error) => log.warn({ err: err.message }, 'kernel path') }
      : {}),
  });
  const closers: Array<() => Promise<void> | void> = [
    ...(kernel ? [() => kernel.close()] : []),
    () => relay.closeAll(),
  ];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    let tcp: RelayServiceHandle['tcp'];
    if (config.tcp) {
      const material = await loadOrCreateTls({
        dataDir: config.stateDir,
        certFile: config.tcp.certFile,
        keyFile: config.tcp.keyFile,
        sans: defaultSans([config.publicAddress], config.tcp.publicUrl?.replace(/^wss:/, 'https:')),
        commonName: 'trellis-relay',
      });
      const server = new TcpFallbackServer({
        ...config.tcp.listen,
        cert: material.cert,
        key: material.key,
        relay,
        onError: (err) => log.error({ err: err.message }, 'TCP fallback listener error'),
      });
      const { port } = await server.listen();
      closers.push(() => server.close());
      const url = config.tcp.publicUrl ?? `wss://${formatEndpoint(config.publicAddress, port)}`;
      tcp = { port, info: { url, fingerprint: material.fingerprint } };
      log.info({ port, url, fingerprint: material.fingerprint }, 'TCP fallback listening');
    }
    let metricsPort: number | undefined;
    if (config.metricsListen) {
      const server: Server = await serveMetrics(
        new RelayMetrics(relay),
        config.metricsListen.host,
        config.metricsListen.port,
      );
      closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      metricsPort = boundPort(server);
    }
    relay.on('bound', (allocationId, publicKey, binding) =>
      log.info({ allocationId, publicKey, binding }, 'side bound'),
    );
    relay.on('expired', (allocationId) => log.info({ allocationId }, 'allocation expired'));

    let link: BrokerLink | undefined;
    let reflector: Awaited<ReturnType<typeof startRelayReflector>> | undefined;
    if (config.reflectorPort != null) {
      reflector = await startRelayReflector({
        stateDir: config.stateDir,
        host: config.listen,
        port: config.reflectorPort,
        publicAddress: config.publicAddress,
        log,
        onObserved: (publicKey, endpoint) => link?.observed(publicKey, endpoint),
      });
      const started = reflector;
      closers.push(() => started.close());
    }
    let reportFatal: (err: Error) => void = () => undefined;
    const fatal = new Promise<Error>((resolve) => (reportFatal = resolve));
    link = new BrokerLink({
      urls: config.brokers.map(relayControlUrl),
      tls: tlsOptions,
      hello: {
        token: config.token,
        name: config.name,
        publicAddress: config.publicAddress,
        ports: config.ports,
        tcp: tcp?.info,
        ...(reflector ? { reflector: reflector.info } : {}),
        version: RELAY_VERSION,
      },
      relay,
      log,
      onFatal: reportFatal,
    });
    link.start();
    const started = link;
    closers.push(() => started.stop());
    return { relay, tcp, metricsPort, fatal, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `on` fails without the kernel path; `auto` relays in the process instead, and says why. */
async function startKernelPath(mode: KernelForwardingMode, log: Logger): Promise<NetdevPath | undefined> {
  if (mode === 'off') return undefined;
  const kernel = new NetdevPath({
    allocation: DEFAULT_ALLOCATION_LIMITS.packets,
    account: DEFAULT_ACCOUNT_PACKETS,
  });
  try {
    await kernel.start();
  } catch (err) {
    if (mode === 'on') throw err;
    log.info({ reason: (err as Error).message }, 'kernel forwarding off: relaying in this process');
    return undefined;
  }
  log.info('kernel forwarding on: bound UDP pairs are forwarded by nftables (netdev ingress)');
  return kernel;
}
