import type { Logger } from 'pino';
import type { OidcOptions } from './oidc/oidc-options';

export interface BrokerOptions {
  dataDir: string;
  /** Postgres connection string; embedded PGlite in `<dataDir>/db` when absent. */
  databaseUrl?: string;
  /** Default 0.0.0.0. */
  host?: string;
  /** Default 8443; 0 picks a free port. */
  port?: number;
  /** URL clients use; also put into the certificate's SANs. */
  publicUrl?: string;
  tlsSans?: string[];
  /**
   * Every connection starts with a PROXY protocol v2 header (HAProxy `send-proxy-v2`) whose source
   * is the connection's remote address everywhere; one without a valid header is closed.
   */
  proxyProtocol?: boolean;
  /** A connection whose PROXY header is not in by then is closed; default DEFAULT_PROXY_HEADER_TIMEOUT_MS. */
  proxyHeaderTimeoutMs?: number;
  /**
   * Listen without TLS: the proxy in front terminates it. Only with `proxyProtocol` and `publicUrl`
   * (the proxy's https URL); devices still verify the broker's key in the control channel.
   */
  plainHttp?: boolean;
  /** With plainHttp: the proxy's certificate, whose fingerprint devices and relays are shown to pin. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** DNS zone of `<device>.<account>.<zone>`; default trellis.internal. */
  zone?: string;
  logLevel?: string;
  logger?: Logger;
  /** Create account `default` with an owner and a setup key on an empty database (default true). */
  bootstrap?: boolean;
  /** Serve `<dataDir>/admin.sock` (default true). */
  adminSocket?: boolean;
  /** Seconds a removed device's address is held back; default 7 days. */
  addressGraceSeconds?: number;
  /** Days audit events are kept (purged hourly); default 365. */
  auditMaxAgeDays?: number;
  /** The built dashboard to serve (index.html and assets); null: none. Default: apps/dashboard/dist when built. */
  dashboardDir?: string | null;
  /** Sign-in polls one client may send per minute (default 600). */
  deviceAuthPollsPerMinute?: number;
  /** Between heartbeats of the dashboard's event stream, which also end it when the session did (default 15 s). */
  eventsHeartbeatMs?: number;
  /** Seconds a signing-in device waits between polls (RFC 8628 `interval`); default 5 (tests: 1). */
  deviceAuthIntervalSeconds?: number;
  /** Addresses per account (tests make this small to reach exhaustion). */
  addressPoolSize?: number;
  authTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Concurrent connections per source address (0: no cap); default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS. */
  maxConnectionsPerAddress?: number;
  /**
   * Connections in their TLS handshake or awaiting their first netmap beyond which new ones wait,
   * unread, for a slot (0: no limit); default DEFAULT_MAX_PENDING_CONNECTIONS. See AdmissionGate.
   */
  maxPendingConnections?: number;
  /** How long a connection may wait for a slot before it is closed; default DEFAULT_MAX_HOLD_MS. */
  admissionHoldMs?: number;
  /** A TLS handshake not done by then is dropped; default TLS_HANDSHAKE_TIMEOUT_MS (tests shorten it). */
  tlsHandshakeTimeoutMs?: number;
  /** Changes within this window are merged into one delta per device; default 25 ms. */
  coalesceMs?: number;
  /**
   * UDP port of the endpoint reflector (on `host`); 0 (the default here) picks a free one, the CLI
   * defaults to 41641. `false` runs no reflector.
   */
  reflectorPort?: number | false;
  /** IP agents send reflector traffic to; default the public URL's host (resolved), else `host`. */
  reflectorPublicHost?: string;
  /** A second reflector `HOST:PORT` on another IP of this machine, to classify devices' NATs. */
  reflector2?: { host: string; port: number };
  /** A relay disconnected this long is down and its allocations are reported lost; default 5 s. */
  relayDownGraceMs?: number;
  /** An allocation the relay does not answer fails after this; default 5 s. */
  relayAllocateTimeoutMs?: number;
  /** How often this instance renews its lease and sweeps expired ones; default 1 s. */
  instanceRenewMs?: number;
  /** An instance whose lease is not renewed for this long is dead and taken over; default 3 s. */
  instanceLeaseMs?: number;
  /** A device is marked offline this long after its connection closed; default DEFAULT_OFFLINE_GRACE_MS. */
  offlineGraceMs?: number;
  /**
   * After a connection was turned away or closed before its netmap, devices count as still coming
   * back (offline marks and idle netmaps wait) this long, or the grace if longer; default the
   * agents' longest reconnect backoff (DEFAULT_BACKOFF.maxMs).
   */
  reconnectWindowMs?: number;
  /**
   * The authoritative DNS server for the zone (UDP and TCP on one port; 0 picks a free one);
   * absent or false: none. A port that cannot be bound is logged, and the broker runs without it.
   */
  /** Dashboard sign-in with an OpenID Connect provider (checked at start); absent: none. */
  oidc?: OidcOptions;
  dns?:
    | {
        host: string;
        port: number;
        ttlSeconds?: number;
        nameServers?: string[];
        /** UDP responses per second to one source network (0: none limited). */
        rateLimit?: number;
      }
    | false;
}
