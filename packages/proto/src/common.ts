import { z } from 'zod';
import { IPV4_RE } from './ipv4';

/** WireGuard keys travel as standard base64 of 32 bytes (44 chars, one '=' pad), as `wg` prints them. */
export const WgKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, 'must be a base64 WireGuard key (32 bytes)');
export type WgKey = z.infer<typeof WgKey>;

/** RFC 1123 label, lower case: what a device or account name becomes in DNS. */
export const DnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a DNS label: a-z, 0-9 and inner hyphens');
export type DnsLabel = z.infer<typeof DnsLabel>;

/** A fully qualified name as the broker builds it: DNS labels joined by dots. */
export const DnsName = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
    'must be a DNS name: labels of a-z, 0-9 and inner hyphens, joined by dots',
  );

/** An IP address or a host name, as a relay announces where it listens. */
export const Host = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9.:-]+$/, 'must be an IP address or a host name');

/** Free text shown to people (versions, relay hosts): no control characters, so no line breaks. */
export const PlainText = (max: number) =>
  z
    .string()
    .max(max)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

/** `ip:port` for IPv4, `[ip]:port` for IPv6 — the form WireGuard's UAPI takes. */
export const Endpoint = z
  .string()
  .max(64)
  .refine((s) => parseEndpoint(s) !== null, 'must be ip:port or [ipv6]:port');
export type Endpoint = z.infer<typeof Endpoint>;

export function parseEndpoint(s: string): { host: string; port: number; family: 4 | 6 } | null {
  const m6 = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s);
  const m4 = /^([0-9.]+):(\d{1,5})$/.exec(s);
  const m = m6 ?? m4;
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  if (m4 && !IPV4_RE.test(m[1]!)) return null;
  if (m6 && !m[1]!.includes(':')) return null;
  return { host: m[1]!, port, family: m6 ? 6 : 4 };
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export const DeviceId = z.string().uuid();

/** Error body of every non-2xx HTTP answer. */
export const ErrorBody = z.object({
  statusCode: z.number().int(),
  error: z.string(),
  message: z.string(),
  /** What went wrong, for a program to act on (`invalid_setup_key`, RFC 8628's `slow_down`, …). */
  code: z.string().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** An endpoint reflector: agents add it as a WireGuard peer (no allowed IPs, persistent keepalive). */
export const ReflectorInfo = z.object({ publicKey: WgKey, endpoint: Endpoint });
export type ReflectorInfo = z.infer<typeof ReflectorInfo>;

/** Heartbeat with RTT measurement, the same on the device and the relay control channels. */
export const PingMessage = z.strictObject({ type: z.literal('ping'), t: z.number() });
export const PongMessage = z.object({ type: z.literal('pong'), t: z.number(), serverTime: z.number() });

export const Os = PlainText(64).min(1);
export const Hostname = PlainText(253).min(1);
