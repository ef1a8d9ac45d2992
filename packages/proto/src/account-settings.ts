import { z } from 'zod';

/** The account's settings an admin changes in the dashboard (API_PATHS.accountSettings). */
export const AccountSettings = z.object({
  /**
   * A device a member signs in waits for an owner's or admin's approval before it joins the mesh.
   * Devices an admin approves at sign-in, and devices enrolled with a setup key (which only admins
   * make), are approved already.
   */
  requireDeviceApproval: z.boolean(),
});
export type AccountSettings = z.infer<typeof AccountSettings>;

/** A change of settings: the fields given are set, the rest kept. */
export const AccountSettingsChange = AccountSettings.partial().strict();
export type AccountSettingsChange = z.infer<typeof AccountSettingsChange>;
