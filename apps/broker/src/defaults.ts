export const DEFAULT_ZONE = 'trellis.internal';
/** Removed devices' addresses are not reused for this long. */
export const DEFAULT_ADDRESS_GRACE_SECONDS = 7 * 86400;
export const DEFAULT_LISTEN = '0.0.0.0:8443';
export const DEFAULT_DATA_DIR = './trellis-data';
/** The endpoint reflector's UDP port (not 3478: that is STUN's, and the reflector speaks WireGuard). */
export const DEFAULT_REFLECTOR_PORT = 41641;
/**
 * Instance leases (several brokers on one PostgreSQL): renewed every second, dead after three.
 * A killed instance is taken over within lease + renew = 4 s, inside the 5 s failover budget.
 */
export const DEFAULT_LEASE_RENEW_MS = 1_000;
export const DEFAULT_LEASE_MS = 3_000;
/**
 * A device whose control connection closed is marked offline this long after, unless it reconnected
 * meanwhile (OfflineGrace): a broker restart or failover then changes nothing its peers see. An
 * account's hub is kept a few seconds longer than that (ControlHub lingerMs).
 */
export const DEFAULT_OFFLINE_GRACE_MS = 10_000;
export const HUB_LINGER_AFTER_GRACE_MS = 5_000;
/** The authoritative DNS server: every address, the DNS port (UDP and TCP). */
export const DEFAULT_DNS_LISTEN = '0.0.0.0:53';
