// The vocabulary shared by every port-mapping protocol and the client that drives them.

export type MappingProtocol = 'pcp' | 'natpmp' | 'upnp';

/** A UDP port mapping the gateway granted: traffic to externalIp:externalPort reaches internalPort. */
export interface PortMapping {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly externalIp: string;
  readonly externalPort: number;
  /** Lifetime the gateway granted, seconds (0 = permanent, UPnP only). */
  readonly lifetimeSeconds: number;
  /** Unix milliseconds after which the gateway drops the mapping unless renewed (Infinity = never). */
  readonly expiresAt: number;
}

/** One protocol's client. Methods reject with PortMapError; none of them throws synchronously. */
export interface PortMapper {
  readonly protocol: MappingProtocol;
  /** Whether the gateway answers this protocol at all (false on silence or garbage). */
  probe(): Promise<boolean>;
  map(internalPort: number, lifetimeSeconds: number): Promise<PortMapping>;
  /** Extends `mapping`; the result may carry a different external address or port. */
  renew(mapping: PortMapping): Promise<PortMapping>;
  unmap(mapping: PortMapping): Promise<void>;
}

/** A failure a mapper reports: timeouts, refusals (with the gateway's code) and malformed replies. */
export class PortMapError extends Error {
  constructor(
    readonly protocol: MappingProtocol,
    message: string,
    readonly code?: number,
  ) {
    super(`${protocol}: ${message}`);
    this.name = 'PortMapError';
  }
}

/** What a strict parser returns instead of throwing. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export const parsed = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const rejected = <T>(error: string): Parsed<T> => ({ ok: false, error });

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}
