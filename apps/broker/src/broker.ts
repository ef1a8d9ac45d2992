import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdirSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import {
  API_PATHS,
  AUTH_TIMEOUT_MS,
  DEFAULT_BACKOFF,
  HEARTBEAT_INTERVAL_MS,
  MAX_HTTP_BODY_BYTES,
} from '@trellis/proto';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS } from '@trellis/tls';
import type { Logger } from 'pino';
import { startAdminSocket } from './admin/admin-socket-server';
import { startAuditPurge } from './audit/audit-log';
import { type BootstrapCredentials, bootstrapIfEmpty } from './bootstrap';
import type { BrokerOptions } from './broker-options';
import { ClusterRelays } from './cluster/cluster-relays';
import { DEFAULT_MAX_PENDING_CONNECTIONS } from './control/admission-gate';
import { ControlHub } from './control/control-hub';
import { ControlServer } from './control/control-server';
import { OFFLINE_HOLD_MAX_GRACES } from './control/offline-grace';
import { openDatabase } from './db/database';
import {
  DEFAULT_ADDRESS_GRACE_SECONDS,
  DEFAULT_OFFLINE_GRACE_MS,
  DEFAULT_ZONE,
  HUB_LINGER_AFTER_GRACE_MS,
} from './defaults';
import { startDns } from './dns/start-dns';
import { type EventBus, InProcessEventBus } from './events/event-bus';
import { PgNotifyEventBus } from './events/pg-notify-bus';
import { brokerHttpModule } from './http/app.module';
import type { BrokerContext } from './http/broker-context';
import { checkListenerOptions, listenBroker, listenerTls } from './http/broker-listener';
import { DashboardEvents } from './http/dashboard-events';
import { dashboardStatic, defaultDashboardDir } from './http/dashboard-static';
import { JsonExceptionFilter } from './http/exception-filter';
import { jsonBody } from './http/json-body';
import { guardServer } from './http/server-guard';
import { routeUpgrades } from './http/websocket-upgrades';
import { InstanceLeases, LEASE_LOST_CLOSE_CODE } from './instances/instance-leases';
import { loadOrCreateBrokerKey } from './keys/broker-key';
import { createLogger } from './logger';
import { BrokerMetrics } from './metrics';
import { checkOidcOptions } from './oidc/oidc-options';
import { startOidc } from './oidc/start-oidc';
import { BrokerReflectors, type ReflectorAddress } from './reflector/broker-reflectors';
import { trackPrivateRelayAccounts } from './relay/private-relay-accounts';
import { RelayControlServer } from './relay/relay-control-server';
import type { RelayDirectory } from './relay/relay-directory';
import { RelayRegistry } from './relay/relay-registry';
import { createServices, type Services } from './services/services';
import { pathStateIntake } from './topology/path-state-intake';
import { TopologyStore } from './topology/topology-store';
import { BROKER_VERSION } from './version';

export type { BrokerOptions } from './broker-options';

export interface BrokerHandle {
  url: string;
  port: number;
  /** SHA-256 of the certificate devices pin, colon hex: with plainHttp the proxy's (--tls-cert), else ''. */
  fingerprint: string;
  /** '' with plainHttp. */
  certFile: string;
  /** The listener speaks TLS (false with plainHttp). */
  tls: boolean;
  brokerPublicKey: string;
  /** The endpoint reflectors agents add as WireGuard peers (empty when disabled). */
  reflectors: BrokerReflectors | null;
  /** Set only on the start that created the first account. */
  bootstrap?: BootstrapCredentials;
  services: Services;
  /** Relays connected to this instance and their allocations (the relay allocator's input). */
  relays: RelayDirectory;
  metrics: BrokerMetrics;
  logger: Logger;
  /** Prefix of this instance's control connection ids and the id of its lease. */
  instanceId: string;
  /** This instance's lease; `onLost` tells when another instance took it over. */
  leases: InstanceLeases;
  /** The DNS server's port (UDP and TCP); null when it does not run. */
  dnsPort: number | null;
  /** Where the dashboard is served; null without a built dashboard. */
  dashboardUrl: string | null;
  /** Device pairs the pair-path cores hold (only pairs in use are kept; read-only, for the benchmark). */
  pathPairs(): number;
  /** Dashboards watching device events on this instance. */
  dashboardWatchers(): number;
  /** Sends pending coalesced deltas now. */
  flush(): void;
  close(): Promise<void>;
}

export async function startBroker(options: BrokerOptions): Promise<BrokerHandle> {
  const dataDir = options.dataDir;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = options.logger ?? createLogger(options.logLevel ?? 'info');
  const zone = options.zone ?? DEFAULT_ZONE;
  // A wrong OIDC setting stops the start with its reason, before anything is opened.
  const oidcOptions = options.oidc ? checkOidcOptions(options.oidc) : undefined;
  checkListenerOptions(options);
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  const closeAll = async () => {
    for (const fn of cleanup.reverse()) await Promise.resolve(fn()).catch(() => {});
  };
  try {
    const database = await openDatabase({ dataDir, databaseUrl: options.databaseUrl });
    cleanup.push(() => database.close());
    const metrics = new BrokerMetrics();
    const bus: EventBus = database.url
      ? await PgNotifyEventBus.connect(database.url, logger, metrics)
      : new InProcessEventBus();
    cleanup.push(() => bus.close());
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    const offlineGraceMs = options.offlineGraceMs ?? DEFAULT_OFFLINE_GRACE_MS;
    const relayRegistry = new RelayRegistry({
      metrics,
      logger,
      downGraceMs: options.relayDownGraceMs,
      allocateTimeoutMs: options.relayAllocateTimeoutMs,
    });
    cleanup.push(() => relayRegistry.close());
    const instanceId = randomBytes(6).toString('hex');
    // Relays connected to other instances serve this one's pairs too (and the other way round).
    const relays = new ClusterRelays(relayRegistry, bus, { instanceId, logger });
    relays.start();
    cleanup.push(() => relays.stop());
    const services = createServices(database.db, bus, {
      zone,
      addressGraceSeconds: options.addressGraceSeconds ?? DEFAULT_ADDRESS_GRACE_SECONDS,
      addressPoolSize: options.addressPoolSize,
      ...(options.deviceAuthIntervalSeconds
        ? { deviceAuthIntervalSeconds: options.deviceAuthIntervalSeconds }
        : {}),
      liveRelays: relayRegistry,
      relayStaleAfterMs: 3 * heartbeatIntervalMs,
      logger,
      ...(options.auditMaxAgeDays ? { auditMaxAgeDays: options.auditMaxAgeDays } : {}),
    });
    cleanup.push(startAuditPurge(services.audit, logger));
    cleanup.push(await trackPrivateRelayAccounts(relayRegistry, services, logger));
    // Relays that were online when the broker last ran report what they hold when they reconnect:
    // pairs wait briefly for that rather than move to a new allocation.
    relayRegistry.expectRelays(await services.relays.onlineAtLastSighting());
    // With the embedded database this is the only broker: nothing is online before it starts.
    if (database.kind === 'pglite') {
      await services.devices.clearConnections('');
      await services.instances.removeAll();
    }
    const bootstrap = options.bootstrap === false ? undefined : await bootstrapIfEmpty(services, dataDir);
    const oidc = oidcOptions && (await startOidc(oidcOptions, services, logger));

    const brokerKey = await loadOrCreateBrokerKey(database.db, join(dataDir, 'broker.key'));
    const { tls, publicFingerprint, httpsOptions } = await listenerTls(dataDir, options);
    // Subscribed before anything publishes: every instance holds every device's reported paths.
    const topology = new TopologyStore();
    topology.start(bus);
    cleanup.push(() => topology.stop());
    const dashboardEvents = new DashboardEvents(bus, services.devices, logger, topology);
    const ctx: BrokerContext = {
      services,
      dashboardEvents,
      topology,
      ...(options.eventsHeartbeatMs ? { eventsHeartbeatMs: options.eventsHeartbeatMs } : {}),
      ...(options.deviceAuthPollsPerMinute
        ? { deviceAuthPollsPerMinute: options.deviceAuthPollsPerMinute }
        : {}),
      brokerKey,
      metrics,
      logger,
      version: BROKER_VERSION,
      ...(options.publicUrl ? { publicUrl: options.publicUrl.replace(/\/+$/, '') } : {}),
      ...(publicFingerprint ? { tlsFingerprint: publicFingerprint } : {}),
      ...(oidc ? { oidc } : {}),
    };

    const app = await NestFactory.create(brokerHttpModule(ctx), {
      ...(httpsOptions ? { httpsOptions } : {}),
      bodyParser: false,
      logger: false,
      abortOnError: false,
    });
    // After the server closes (cleanup runs in reverse): its connections came through the
    // listener, which is what counts them, so app.close() alone does not wait for them to end.
    let listenerClosed: Promise<void> | undefined;
    cleanup.push(() => listenerClosed);
    cleanup.push(() => app.close());
    // Before the server closes (runs first): an open event stream would keep it open.
    cleanup.push(() => dashboardEvents.close());
    app.getHttpAdapter().getInstance().disable('x-powered-by');
    const dashboardDir = options.dashboardDir === undefined ? defaultDashboardDir() : options.dashboardDir;
    app.use(dashboardStatic(dashboardDir));
    app.use(jsonBody(MAX_HTTP_BODY_BYTES, logger, metrics));
    app.useGlobalFilters(new JsonExceptionFilter(logger, metrics));
    await app.init();

    const host = options.host ?? '0.0.0.0';
    let reflectors: BrokerReflectors | null = null;
    if (options.reflectorPort !== false) {
      const publicHost = await reflectorPublicHost(options, host);
      const primary: ReflectorAddress = { host, port: options.reflectorPort ?? 0, publicHost };
      const r2 = options.reflector2;
      reflectors = new BrokerReflectors({
        dataDir,
        primary,
        ...(r2 ? { secondary: { ...r2, publicHost: r2.host } } : {}),
        devices: services.devices,
        bus,
        logger,
      });
      const started = reflectors;
      cleanup.push(() => started.close());
      await reflectors.start();
    }

    const hub = new ControlHub(services.devices, bus, {
      instanceId,
      zone,
      coalesceMs: options.coalesceMs ?? 25,
      lingerMs: offlineGraceMs > 0 ? offlineGraceMs + HUB_LINGER_AFTER_GRACE_MS : 0,
      // As long as the offline marks of its devices may wait: until then their tokens still apply.
      busy: (): boolean => control.storming,
      lingerHoldMaxMs: offlineGraceMs * OFFLINE_HOLD_MAX_GRACES + HUB_LINGER_AFTER_GRACE_MS,
      onLingerHeld: () => metrics.netmapsHeld.inc(),
      logger,
      reflectors: reflectors?.info ?? [],
      ...(reflectors ? { reflexive: reflectors } : {}),
      relays,
    });
    hub.start();
    cleanup.push(() => hub.stop());
    const leases = new InstanceLeases({
      instanceId,
      url: brokerUrl(options, host, options.port ?? 8443),
      version: BROKER_VERSION,
      instances: services.instances,
      devices: services.devices,
      metrics,
      logger,
      renewMs: options.instanceRenewMs,
      leaseMs: options.instanceLeaseMs,
      takeoverGraceMs: offlineGraceMs,
    });
    leases.onTakeover((instance) => {
      bus.publish({ kind: 'instance-gone', instance }).catch((err: Error) => {
        logger.warn({ err: err.message }, 'instance-gone not published');
      });
    });
    // Runs after the control server's close (cleanup runs in reverse): drops what is left, then the lease.
    cleanup.push(() => leases.stop());
    if (reflectors && !reflectors.hasSecondary) {
      // One broker address: a shared relay's reflector classifies NATs instead (ARCHITECTURE).
      const broker = reflectors;
      let second: string | undefined;
      const pick = () => {
        const shared = relays.sharedReflector();
        second = shared?.relayId;
        hub.setExtraReflector(shared?.reflector);
      };
      relays.on('relay-up', pick);
      relays.on('relay-down', pick);
      relays.on('observed', (relayId, publicKey, endpoint) => {
        // Only for devices connected here: this instance's reflector saw the other half of the pair
        // of observations; another instance would store half of what the device's own one has.
        if (relayId === second && hub.holdsKey(publicKey))
          void broker
            .observeExternal(publicKey, endpoint)
            .catch((err: Error) => logger.warn({ err: err.message }, 'relay observation failed'));
      });
    }
    const server = app.getHttpServer() as HttpsServer;
    cleanup.push(guardServer(server, options.maxConnectionsPerAddress, metrics, logger));
    const control: ControlServer = new ControlServer({
      devices: services.devices,
      hub,
      brokerKey,
      metrics,
      logger,
      authTimeoutMs: options.authTimeoutMs ?? AUTH_TIMEOUT_MS,
      heartbeatIntervalMs,
      offlineGraceMs,
      reconnectWindowMs: options.reconnectWindowMs ?? DEFAULT_BACKOFF.maxMs,
      maxPendingConnections: options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS,
      admissionHoldMs: options.admissionHoldMs,
      maxHeldPerAddress: options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      instanceId,
      onPath: (deviceId, msg) => hub.pathMessage(deviceId, msg),
      onPathState: pathStateIntake({ peersOf: (id) => hub.peersOf(id), bus, logger }),
      onAdvertise: async (deviceId, msg, address) => {
        await services.routes.advertise(deviceId, msg, { kind: 'device', deviceId, address });
      },
    });
    cleanup.push(() => control.close());
    cleanup.push(control.guard(server));
    // Another instance took this one over and marked its devices offline: make them reconnect.
    leases.onLost(() => control.closeAll(LEASE_LOST_CLOSE_CODE, 'broker instance lost its lease; reconnect'));
    const relayControl = new RelayControlServer({
      tokens: services.relayTokens,
      relays: services.relays,
      registry: relayRegistry,
      metrics,
      logger,
      authTimeoutMs: options.authTimeoutMs ?? AUTH_TIMEOUT_MS,
      heartbeatIntervalMs,
    });
    cleanup.push(() => relayControl.close());
    cleanup.push(
      routeUpgrades(server, {
        [API_PATHS.control]: (req, socket, head) => control.handleUpgrade(req, socket, head),
        [API_PATHS.relayControl]: (req, socket, head) => relayControl.handleUpgrade(req, socket, head),
      }),
    );

    const dnsOptions = options.dns && { ...options.dns, zone, publicUrl: options.publicUrl };
    const dns = dnsOptions ? await startDns(database.db, bus, dnsOptions, logger, metrics) : null;
    if (dns) cleanup.push(() => dns.close());
    // Before listening: every connection id this instance hands out is covered by a lease.
    await leases.start();
    const listen = { ...options, host, port: options.port ?? 8443 };
    const offer = (socket: Socket, admit: (s: Socket) => void) => control.offer(socket, admit);
    const listener = await listenBroker(server, offer, listen, metrics, logger);
    cleanup.push(() => listener.stop());
    listenerClosed = listener.closed;
    const port = listener.port;
    if (options.adminSocket !== false) {
      const admin = await startAdminSocket(join(dataDir, 'admin.sock'), services, logger);
      cleanup.push(() => new Promise<void>((resolve) => admin.close(() => resolve())));
    }
    const url = brokerUrl(options, host, port);
    await leases.setUrl(url);
    const listening = {
      url,
      port,
      fingerprint: publicFingerprint ?? null,
      proxyProtocol: listen.proxyProtocol,
    };
    logger.info({ ...listening, database: database.kind, instanceId }, 'broker listening');
    let closed = false;
    return {
      url,
      port,
      dashboardUrl: dashboardDir ? `${url}/` : null,
      dashboardWatchers: () => dashboardEvents.watching,
      fingerprint: publicFingerprint ?? '',
      certFile: tls?.certFile ?? '',
      tls: tls !== null,
      brokerPublicKey: brokerKey.publicKey,
      reflectors,
      bootstrap,
      services,
      relays: relayRegistry,
      metrics,
      logger,
      instanceId,
      leases,
      dnsPort: dns?.port ?? null,
      pathPairs: () => hub.pairCount,
      flush: () => hub.flushAll(),
      close: async () => {
        if (closed) return;
        closed = true;
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function brokerUrl(options: BrokerOptions, host: string, port: number): string {
  const shownHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return options.publicUrl?.replace(/\/+$/, '') ?? `https://${shownHost}:${port}`;
}

/** The IP agents reach the reflector at: explicit, else the public URL's host, else the bind address. */
async function reflectorPublicHost(options: BrokerOptions, bindHost: string): Promise<string> {
  if (options.reflectorPublicHost) return options.reflectorPublicHost;
  if (options.publicUrl) {
    const name = new URL(options.publicUrl).hostname.replace(/^\[|\]$/g, '');
    if (isIP(name)) return name;
    return (await lookup(name, { family: 4 })).address;
  }
  return bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : bindHost;
}
