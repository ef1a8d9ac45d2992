import type { BrokerHandle } from '../broker';
import { startBroker } from '../broker';
import { type OidcFlags, oidcFromFlags } from './oidc-flags';
import type { CliIo } from './output';

export interface ServeFlags extends OidcFlags {
  dataDir: string;
  listen: string;
  publicUrl?: string;
  tlsSan: string[];
  tlsCert?: string;
  tlsKey?: string;
  proxyProtocol?: boolean;
  plainHttp?: boolean;
  zone: string;
  logLevel: string;
  /** 0 disables the reflector; absent picks a free port (the CLI defaults to DEFAULT_REFLECTOR_PORT). */
  reflectorPort?: number;
  reflectorHost?: string;
  reflector2?: string;
  /** Instance lease renew interval and length (several instances on one PostgreSQL); ms. */
  leaseRenewMs?: number;
  leaseMs?: number;
  offlineGraceMs?: number;
  /** Days audit events are kept (default DEFAULT_AUDIT_MAX_AGE_DAYS). */
  auditMaxAgeDays?: number;
  maxConnectionsPerAddress?: number;
  maxPendingConnections?: number;
  /** `HOST:PORT` of the DNS server, or `off`. */
  dnsListen: string;
  dnsTtl: number;
  dnsNs: string[];
  dnsRateLimit: number;
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT`. */
export function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`${flag} must be HOST:PORT, got "${listen}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export async function serve(flags: ServeFlags, io: CliIo): Promise<BrokerHandle> {
  const { host, port } = parseListen(flags.listen);
  if (flags.publicUrl) {
    const u = new URL(flags.publicUrl);
    if (u.protocol !== 'https:') throw new Error('--public-url must be an https:// URL');
  }
  const oidc = oidcFromFlags(flags);
  const broker = await startBroker({
    dataDir: flags.dataDir,
    databaseUrl: process.env.DATABASE_URL || undefined,
    host,
    port,
    publicUrl: flags.publicUrl,
    tlsSans: flags.tlsSan,
    tlsCertFile: flags.tlsCert,
    tlsKeyFile: flags.tlsKey,
    proxyProtocol: flags.proxyProtocol === true,
    plainHttp: flags.plainHttp === true,
    zone: flags.zone,
    logLevel: flags.logLevel,
    reflectorPort: flags.reflectorPort === 0 ? false : flags.reflectorPort,
    reflectorPublicHost: flags.reflectorHost,
    reflector2: flags.reflector2 ? parseListen(flags.reflector2) : undefined,
    instanceRenewMs: flags.leaseRenewMs,
    instanceLeaseMs: flags.leaseMs,
    offlineGraceMs: flags.offlineGraceMs,
    auditMaxAgeDays: flags.auditMaxAgeDays,
    maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
    maxPendingConnections: flags.maxPendingConnections,
    ...(oidc ? { oidc } : {}),
    dns:
      flags.dnsListen === 'off'
        ? false
        : {
            ...parseListen(flags.dnsListen, '--dns-listen'),
            ttlSeconds: flags.dnsTtl,
            nameServers: flags.dnsNs,
            rateLimit: flags.dnsRateLimit,
          },
  });
  for (const r of broker.reflectors?.info ?? []) io.out(`reflector: ${r.endpoint} key ${r.publicKey}`);
  io.out(`trellis-broker listening on ${broker.url}`);
  if (broker.dashboardUrl) io.out(`dashboard: ${broker.dashboardUrl}`);
  if (oidc) io.out(`dashboard sign-in: OpenID Connect ${oidc.issuer} (client ${oidc.clientId})`);
  if (broker.dnsPort !== null) io.out(`dns: ${flags.zone} on udp and tcp port ${broker.dnsPort}`);
  if (broker.tls) {
    io.out(`fingerprint: sha256 ${broker.fingerprint}`);
    io.out(`certificate: ${broker.certFile}`);
  } else io.out("tls: terminated by the proxy in front (devices verify the proxy's certificate)");
  // Without TLS here devices pin nothing of this broker's: the proxy's certificate is what they see.
  const pin = broker.tls ? ` --fingerprint ${broker.fingerprint}` : '';
  io.out(`broker public key: ${broker.brokerPublicKey}`);
  if (broker.bootstrap) {
    const b = broker.bootstrap;
    io.out('');
    io.out('=== first start: created account, owner and setup key (shown only this once) ===');
    io.out(`account:        ${b.account}`);
    io.out(`owner email:    ${b.ownerEmail}`);
    io.out(`owner password: ${b.ownerPassword}`);
    io.out(`setup key:      ${b.setupKey}   (reusable, expires ${b.setupKeyExpiresAt})`);
    io.out(`(also in ${b.file}, mode 0600; delete it once they are kept elsewhere)`);
    io.out(
      `(lost these? trellis-broker accounts reset-owner --data-dir ${flags.dataDir} --account ${b.account})`,
    );
    io.out('');
    io.out('next: on each device (as root), with trellisd running, either sign in:');
    io.out(`  trellis up --broker ${broker.url}${pin}`);
    if (broker.dashboardUrl) {
      const approve = `  (it prints a page and a code: approve them signed in as the owner at ${broker.dashboardUrl}`;
      io.out(broker.tls ? `${approve};` : `${approve})`);
      if (broker.tls)
        io.out(
          '   the browser warns of the self-signed certificate: compare its SHA-256 with the fingerprint)',
        );
    }
    io.out('or enroll with the setup key:');
    io.out(`  trellis up --broker ${broker.url} --setup-key ${b.setupKey}${pin}`);
    io.out('==================================================================================');
    io.out('');
  } else {
    io.out(
      `new setup key: trellis-broker setup-keys create --data-dir ${flags.dataDir} --account default --reusable`,
    );
  }
  io.out(`trellis-broker ready ${broker.url}`);
  return broker;
}
