import { isIP } from 'node:net';
import {
  DEFAULT_RESPONSE_LIMITS,
  DnsResponder,
  DnsServer,
  ResponseLimiter,
  ZoneAnswerer,
} from '@trellis/dns';
import type { Logger } from 'pino';
import type { Db } from '../db/database';
import type { EventBus } from '../events/event-bus';
import type { BrokerMetrics } from '../metrics';
import { ZoneRecords } from './zone-records';
import { ZoneSync } from './zone-sync';

export const DEFAULT_DNS_TTL_SECONDS = 30;

export interface DnsOptions {
  host: string;
  /** 0 picks a free port (UDP and TCP get the same one). */
  port: number;
  zone: string;
  ttlSeconds?: number;
  /** Host names for the NS records (the first is the SOA's MNAME); default the public URL's host. */
  nameServers?: readonly string[];
  publicUrl?: string;
  /** UDP responses per second to one source network; 0 limits none (default 100). */
  rateLimit?: number;
}

export interface RunningDns {
  port: number;
  records: ZoneRecords;
  close(): Promise<void>;
}

/**
 * The authoritative server for `<device>.<account>.<zone>`, its records loaded and followed; null
 * (logged as an error) when its address cannot be bound: the control plane runs on without it.
 */
export async function startDns(
  db: Db,
  bus: EventBus,
  opts: DnsOptions,
  logger: Logger,
  metrics: BrokerMetrics,
): Promise<RunningDns | null> {
  const records = new ZoneRecords();
  const sync = new ZoneSync(db, bus, records, logger);
  await sync.start();
  const zone = opts.zone.toLowerCase().replace(/\.$/, '');
  const answerer = new ZoneAnswerer(
    {
      zone,
      ttl: opts.ttlSeconds ?? DEFAULT_DNS_TTL_SECONDS,
      nameServers: opts.nameServers?.length ? opts.nameServers : [defaultNameServer(opts)],
      hostmaster: `hostmaster.${zone}`,
    },
    records,
  );
  const perSecond = opts.rateLimit ?? DEFAULT_RESPONSE_LIMITS.perSecond;
  const limiter =
    perSecond === 0
      ? null
      : new ResponseLimiter({ ...DEFAULT_RESPONSE_LIMITS, perSecond, burst: perSecond * 2 });
  const server = new DnsServer(new DnsResponder(answerer), logger, limiter, metrics.dnsCounts);
  try {
    const { port } = await server.listen(opts.host, opts.port);
    logger.info({ host: opts.host, port, zone }, 'dns server listening');
    return {
      port,
      records,
      close: async () => {
        sync.stop();
        await server.close();
      },
    };
  } catch (err) {
    sync.stop();
    await server.close();
    logger.error(
      { host: opts.host, port: opts.port, err: (err as Error).message },
      'DNS server not started (choose another address with --dns-listen, or --dns-listen off)',
    );
    return null;
  }
}

/**
 * The NS name when none is given: the public URL's host when it is a name (an address is no NS
 * name), else `localhost`; a zone delegated from elsewhere needs --dns-ns.
 */
function defaultNameServer(opts: DnsOptions): string {
  const fromUrl = opts.publicUrl ? new URL(opts.publicUrl).hostname.replace(/^\[|\]$/g, '') : '';
  return fromUrl && isIP(fromUrl) === 0 ? fromUrl : 'localhost';
}
