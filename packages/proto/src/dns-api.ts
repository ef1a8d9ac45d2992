import { z } from 'zod';
import { DnsLabel } from './common';

/**
 * The account's DNS over the HTTP API: its zone and whether its names are answered to everyone
 * (public) or only to the account's own devices (mesh-only). Every signed-in user of the account
 * may read it; owners and admins change it.
 */
export const DnsSettings = z.object({
  account: DnsLabel,
  /** The broker's zone, e.g. `mesh.example.com`. */
  zone: z.string(),
  /** Where the account's names live: `<device>.<accountZone>`. */
  accountZone: z.string(),
  /** True: the broker refuses queries for these names from addresses none of the devices has. */
  meshOnly: z.boolean(),
});
export type DnsSettings = z.infer<typeof DnsSettings>;

export const SetDnsSettingsRequest = z.strictObject({ meshOnly: z.boolean() });
export type SetDnsSettingsRequest = z.infer<typeof SetDnsSettingsRequest>;
