import { z } from 'zod';
import { MAX_DEVICE_TAGS, TagName } from './access';
import { DeviceInfo, Role, SetupKeyInfo } from './api';
import { DnsLabel, PlainText, WgKey } from './common';
import {
  PolicyApplyResult,
  PolicyCheckResult,
  PolicyDocument,
  PolicyExplainResult,
  PolicyPlanResult,
  PolicyText,
  PolicyVersionInfo,
} from './policy-api';
import { CreateRelayTokenResponse, RelayStatusInfo, RelayTokenInfo } from './relay';
import { MAX_DEVICE_ROUTES, RoutePrefix, RouteRow } from './routes';
import { CreateVirtualDeviceRequest } from './virtual';

/**
 * The broker's local admin socket (`<data-dir>/admin.sock`, mode 0600): one JSON request per line,
 * one JSON response per line. The `trellis-broker` admin commands use it while a broker serves the
 * data directory, so changes go through the running broker (and fan out to connected devices).
 */
/** A policy file (up to MAX_POLICY_BYTES) travels in one line, JSON-escaped. */
export const MAX_ADMIN_LINE_BYTES = 4 * 1024 * 1024;

// No control characters anywhere: these end up in logs, in the database and in `trellis-broker` output.
const AccountName = PlainText(63).min(1);
const Password = PlainText(1024).min(1);

export const AdminRequest = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('accounts.create'),
    name: AccountName,
    ownerEmail: PlainText(254),
    password: Password.optional(),
  }),
  z.strictObject({ op: z.literal('accounts.list') }),
  /** A new password for the account's owner (generated when absent), ending the owner's sessions. */
  z.strictObject({
    op: z.literal('accounts.resetOwner'),
    account: AccountName,
    password: Password.optional(),
  }),
  /** Device names answered to anyone (public) or only to the account's own devices (mesh-only). */
  z.strictObject({ op: z.literal('accounts.dns'), account: AccountName, meshOnly: z.boolean() }),
  z.strictObject({
    op: z.literal('users.create'),
    account: AccountName,
    email: PlainText(254),
    role: PlainText(16),
    password: Password.optional(),
  }),
  z.strictObject({
    op: z.literal('setupKeys.create'),
    account: AccountName,
    name: PlainText(128).min(1),
    reusable: z.boolean(),
    expiresInSeconds: z.number().int().positive().optional(),
    usageLimit: z.number().int().positive().optional(),
    tags: z.array(TagName).max(MAX_DEVICE_TAGS).optional(),
    cidr: DnsLabel.optional(),
  }),
  z.strictObject({ op: z.literal('setupKeys.list'), account: AccountName }),
  z.strictObject({ op: z.literal('setupKeys.revoke'), account: AccountName, id: PlainText(64) }),
  z.strictObject({ op: z.literal('devices.list'), account: AccountName }),
  z.strictObject({
    op: z.literal('devices.remove'),
    account: AccountName,
    device: PlainText(128).min(1),
  }),
  z.strictObject({
    op: z.literal('devices.tag'),
    account: AccountName,
    device: PlainText(128).min(1),
    tags: z.array(TagName).max(MAX_DEVICE_TAGS),
  }),
  z.strictObject({
    op: z.literal('devices.rename'),
    account: AccountName,
    device: PlainText(128).min(1),
    name: PlainText(63).min(1),
  }),
  /** Registers a LAN host behind a gateway device as a virtual device (its own mesh address and name). */
  z.strictObject({
    op: z.literal('devices.addVirtual'),
    account: AccountName,
    device: CreateVirtualDeviceRequest,
  }),
  /** Gives a device that lost its key a new one (its peers see keyChange `rekeyed`). */
  z.strictObject({
    op: z.literal('devices.rekey'),
    account: AccountName,
    device: PlainText(128).min(1),
    publicKey: WgKey,
  }),
  z.strictObject({
    op: z.literal('policy.get'),
    account: AccountName,
    version: z.number().int().nonnegative().optional(),
  }),
  z.strictObject({ op: z.literal('policy.check'), account: AccountName, text: PolicyText }),
  z.strictObject({ op: z.literal('policy.plan'), account: AccountName, text: PolicyText }),
  z.strictObject({ op: z.literal('policy.apply'), account: AccountName, text: PolicyText }),
  z.strictObject({ op: z.literal('policy.history'), account: AccountName }),
  z.strictObject({
    op: z.literal('policy.rollback'),
    account: AccountName,
    version: z.number().int().positive(),
  }),
  z.strictObject({
    op: z.literal('policy.explain'),
    account: AccountName,
    src: PlainText(128).min(1),
    dst: PlainText(160).min(1),
  }),
  /** Without `account`: a shared (operator) relay that serves every account without private relays. */
  z.strictObject({
    op: z.literal('relayTokens.create'),
    account: AccountName.optional(),
    name: PlainText(128).min(1),
  }),
  z.strictObject({ op: z.literal('relayTokens.list'), account: AccountName.optional() }),
  z.strictObject({ op: z.literal('relayTokens.revoke'), id: PlainText(64) }),
  z.strictObject({ op: z.literal('relays.list') }),
  z.strictObject({ op: z.literal('instances.list') }),
  z.strictObject({ op: z.literal('routes.list'), account: AccountName }),
  /** Adds `prefixes` to (approve) or takes them from (unapprove) the device's approved routes. */
  z.strictObject({
    op: z.enum(['routes.approve', 'routes.unapprove']),
    account: AccountName,
    device: PlainText(128).min(1),
    prefixes: z.array(RoutePrefix).min(1).max(MAX_DEVICE_ROUTES),
  }),
]);
export type AdminRequest = z.infer<typeof AdminRequest>;

export const AccountInfo = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  /** Device names answered only to the account's own devices (absent from older brokers: public). */
  dnsMeshOnly: z.boolean().optional(),
});
export type AccountInfo = z.infer<typeof AccountInfo>;

export const UserInfo = z.object({ id: z.string(), email: z.string(), role: Role });

/** A generated password is present only when none was given, and is shown only once. */
export const CreateAccountResult = z.object({
  account: AccountInfo,
  owner: UserInfo,
  generatedPassword: z.string().optional(),
});
export const CreateUserResult = UserInfo.extend({ generatedPassword: z.string().optional() });
export const ResetOwnerResult = UserInfo.extend({ generatedPassword: z.string().optional() });
export const CreateSetupKeyResult = z.object({ key: z.string(), setupKey: SetupKeyInfo });

/** A broker instance's lease in the shared database; `live` is false once it has expired (dead). */
export const InstanceInfo = z.object({
  id: z.string(),
  url: z.string(),
  version: z.string(),
  startedAt: z.string(),
  expiresAt: z.string(),
  live: z.boolean(),
});
export type InstanceInfo = z.infer<typeof InstanceInfo>;

/** Result schema per op, so a client can check what it receives. */
export const AdminResults = {
  'accounts.create': CreateAccountResult,
  'accounts.list': z.array(AccountInfo),
  'accounts.dns': AccountInfo,
  'accounts.resetOwner': ResetOwnerResult,
  'users.create': CreateUserResult,
  'setupKeys.create': CreateSetupKeyResult,
  'setupKeys.list': z.array(SetupKeyInfo),
  'setupKeys.revoke': SetupKeyInfo,
  'devices.list': z.array(DeviceInfo),
  'devices.remove': DeviceInfo,
  'devices.tag': DeviceInfo,
  'devices.rekey': DeviceInfo,
  'devices.rename': DeviceInfo,
  'devices.addVirtual': DeviceInfo,
  'policy.get': PolicyDocument,
  'policy.check': PolicyCheckResult,
  'policy.plan': PolicyPlanResult,
  'policy.apply': PolicyApplyResult,
  'policy.history': z.array(PolicyVersionInfo),
  'policy.rollback': PolicyApplyResult,
  'policy.explain': PolicyExplainResult,
  'relayTokens.create': CreateRelayTokenResponse,
  'relayTokens.list': z.array(RelayTokenInfo),
  'relayTokens.revoke': RelayTokenInfo,
  'relays.list': z.array(RelayStatusInfo),
  'instances.list': z.array(InstanceInfo),
  'routes.list': z.array(RouteRow),
  'routes.approve': z.array(RouteRow),
  'routes.unapprove': z.array(RouteRow),
} as const satisfies Record<AdminRequest['op'], z.ZodType>;

export const AdminResponse = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), status: z.number().int(), error: z.string() }),
]);
export type AdminResponse = z.infer<typeof AdminResponse>;
