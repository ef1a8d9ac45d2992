import { z } from 'zod';
import { AccessRules, MAX_DEVICE_TAGS, TagName } from './access';
import { DeviceId, DnsLabel, DnsName, PlainText } from './common';
import { Ipv4, ipv4InCidr, OVERLAY_PREFIX, OverlayAddress } from './ipv4';
import { SPECIAL_RANGES } from './routes';

/**
 * Virtual devices (issue 14): a LAN host that cannot run Trellis (printer, camera), registered by an
 * admin behind a gateway device. It has its own mesh address and DNS name and is a device to the
 * policy; the gateway maps its mesh address to its LAN address both ways (1:1 NAT), so two sites
 * with the same LAN addresses are reached by distinct mesh addresses.
 */

/** Most virtual devices one gateway serves. */
export const MAX_VIRTUAL_DEVICES_PER_GATEWAY = 256;

/** Why `s` cannot be a virtual device's LAN address (a unicast IPv4 outside the overlay); null when it can. */
export function lanAddressProblem(s: string): string | null {
  if (!Ipv4.safeParse(s).success) return 'must be a dotted IPv4 address';
  if (ipv4InCidr(s, OVERLAY_PREFIX)) return `must not be inside the overlay ${OVERLAY_PREFIX}`;
  const special = SPECIAL_RANGES.find((r) => ipv4InCidr(s, r));
  if (special) return `must not be in ${special} (not a LAN host)`;
  return null;
}

export const LanAddress = z
  .string()
  .max(15)
  .superRefine((s, ctx) => {
    const problem = lanAddressProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * A virtual device in a viewer's netmap (NetmapMessage.virtual): reached through `via`, a peer in
 * the same netmap whose tunnel carries its address. What the viewer may open on it and it on the
 * viewer travels in `access` like a peer's.
 */
export const NetmapVirtual = z.object({
  id: DeviceId,
  name: DnsLabel,
  dnsName: DnsName,
  address: OverlayAddress,
  via: DeviceId,
});
export type NetmapVirtual = z.infer<typeof NetmapVirtual>;

/** What the listed peers may open on a virtual device this gateway serves. */
export const HostedAccess = z.strictObject({
  peers: z.array(DeviceId).min(1).max(100_000),
  in: AccessRules,
});
export type HostedAccess = z.infer<typeof HostedAccess>;

/** A virtual device this device serves (NetmapSelf.virtualDevices): it DNATs `address` to `lanAddress`. */
export const HostedVirtual = z.object({
  id: DeviceId,
  name: DnsLabel,
  address: OverlayAddress,
  lanAddress: LanAddress,
  /** Who may open what on it; a peer listed nowhere gets nothing. */
  access: z.array(HostedAccess).max(100_000),
});
export type HostedVirtual = z.infer<typeof HostedVirtual>;

/** Registers a LAN host behind `gateway` (a device's id or name). */
export const CreateVirtualDeviceRequest = z.strictObject({
  name: DnsLabel,
  lanAddress: LanAddress,
  gateway: PlainText(128).min(1),
  tags: z.array(TagName).max(MAX_DEVICE_TAGS).optional(),
});
export type CreateVirtualDeviceRequest = z.infer<typeof CreateVirtualDeviceRequest>;
