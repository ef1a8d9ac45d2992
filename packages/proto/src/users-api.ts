import { z } from 'zod';
import { LoginRequest, Role } from './api';

/**
 * The account's users, managed by its owners and admins (`API_PATHS.users`). Rules (the broker
 * enforces them): only an owner grants or takes `owner`/`admin`; the last owner is neither removed
 * nor demoted; nobody changes their own role or removes themselves; removing a user ends every
 * session and API token of theirs, revokes the setup keys they created and removes their devices.
 */
export const AccountUserInfo = z.object({
  id: z.string(),
  /** Lower case: emails are compared without case. */
  email: z.string(),
  role: Role,
  createdAt: z.string(),
  /** Start of their latest session on record (one is forgotten soon after it expires, 24 h on); null: none. */
  lastSignInAt: z.string().nullable(),
  /** Devices that belong to them. */
  devices: z.number().int().nonnegative(),
});
export type AccountUserInfo = z.infer<typeof AccountUserInfo>;

/** The shortest password an admin may give a new user (the broker's password rule). */
export const MIN_USER_PASSWORD_LENGTH = 12;

export const CreateUserRequest = z.strictObject({
  email: LoginRequest.shape.email,
  role: Role,
  /** The initial password, handed to the user by the admin; they may change it later. */
  password: z.string().min(MIN_USER_PASSWORD_LENGTH).max(1024),
});
export type CreateUserRequest = z.infer<typeof CreateUserRequest>;

export const SetUserRoleRequest = z.strictObject({ role: Role });
export type SetUserRoleRequest = z.infer<typeof SetUserRoleRequest>;

/** What removing a user did: everything of theirs that went with them. */
export const RemovedUser = z.object({
  user: AccountUserInfo,
  sessionsEnded: z.number().int().nonnegative(),
  devicesRemoved: z.number().int().nonnegative(),
  setupKeysRevoked: z.number().int().nonnegative(),
});
export type RemovedUser = z.infer<typeof RemovedUser>;

/** What a page needs to show the exact `trellis-relay` command for a new private relay. */
export const RelaySetupInfo = z.object({
  /** The broker's configured public URL; null: the one the dashboard was opened at. */
  brokerUrl: z.string().nullable(),
  /** SHA-256 of the broker's TLS certificate, for `trellis-relay --fingerprint`. */
  fingerprint: z.string(),
});
export type RelaySetupInfo = z.infer<typeof RelaySetupInfo>;
