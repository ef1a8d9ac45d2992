import type { AuditAction } from '@trellis/proto';

/**
 * Who makes a change. Controllers build it from the signed-in user and the request's address
 * (userActor); the admin socket and direct-database CLI pass CLI_ACTOR; the control channel a
 * device actor. A user actor with userId null is someone who is not signed in (a failed sign-in).
 */
export type Actor =
  | { kind: 'user'; userId: string | null; email: string; address: string | null }
  | { kind: 'device'; deviceId: string | null; address: string | null }
  | { kind: 'relay'; address: string | null }
  | { kind: 'cli' }
  | { kind: 'system' };

export const CLI_ACTOR: Actor = { kind: 'cli' };
/** The broker itself (and a direct service call that names no one, as in tests). */
export const SYSTEM_ACTOR: Actor = { kind: 'system' };

export type AuditTargetKind =
  | 'account'
  | 'user'
  | 'device'
  | 'device-authorization'
  | 'setup-key'
  | 'policy'
  | 'relay-token'
  | 'relay';

export interface AuditTarget {
  kind: AuditTargetKind;
  id: string | null;
  name: string | null;
}

/** A setup key as the log names it: never the key, only what the key list shows too. */
export interface SetupKeyRef {
  id: string;
  name: string;
  prefix: string;
}

/**
 * What each action records besides who and the target. Nothing here may be a secret (no key,
 * token, password or private key): the log is shown to every admin of the account.
 */
export interface AuditDetails {
  'account.created': { ownerEmail: string };
  'account.dns-changed': { meshOnly: boolean };
  'account.settings-changed': { requireDeviceApproval: { from: boolean; to: boolean } };
  'user.created': { role: string };
  'user.role-changed': { from: string; to: string };
  'user.removed': { role: string; sessionsEnded: number; setupKeysRevoked: number };
  'user.owner-password-reset': { passwordGenerated: boolean };
  'user.signed-in': Record<string, never>;
  'user.sign-in-failed': { reason: 'wrong email or password' };
  'user.signed-out-everywhere': { sessionsEnded: number };
  'device.enrolled':
    | { via: 'setup-key'; setupKey: SetupKeyRef; address: string; reenrolled: boolean }
    | { via: 'sign-in'; approvedBy: string; address: string; reenrolled: boolean };
  'device.renamed': { from: string; to: string };
  'device.tagged': { from: string[]; to: string[] };
  /** `gateway`: a virtual device, removed by name or with its gateway (`withGateway`). */
  'device.removed': {
    address: string;
    lanAddress?: string;
    gateway?: { id: string; name: string };
    withGateway?: true;
  };
  'device.virtual-added': {
    name: string;
    lanAddress: string;
    gateway: { id: string; name: string };
    address: string;
    tags: string[];
  };
  'device.approved': { owner: string | null };
  'device.rekeyed': { previousKey: string; newKey: string };
  'device.key-rotated': { previousKey: string; newKey: string };
  'device-authorization.approved': { deviceId: string; hostname: string; os: string };
  'device-authorization.denied': { hostname: string; os: string; requestedFrom: string };
  'setup-key.created': {
    prefix: string;
    reusable: boolean;
    usageLimit: number | null;
    expiresAt: string | null;
    tags: string[];
    cidr: string | null;
  };
  'setup-key.revoked': { prefix: string };
  'policy.applied': { version: number; bytes: number };
  'policy.rolled-back': { version: number; restored: number };
  'relay-token.created': { prefix: string; shared: boolean };
  'relay-token.revoked': { prefix: string; shared: boolean };
  'relay.registered': { publicAddress: string; tokenId: string };
  'routes.approved': { before: string[]; after: string[] };
  /** By the policy's autoApprovers: newly approved, and approvals the policy no longer gives. */
  'routes.auto-approved': { prefixes: string[]; withdrawn: string[]; policyVersion: number };
}

type EventOf<A extends AuditAction> = {
  action: A;
  /** null: an operator-level change no account sees (a shared relay, a sign-in by an unknown email). */
  accountId: string | null;
  target: AuditTarget;
  details: AuditDetails[A];
};

/** One entry of the log, typed by its action. */
export type AuditEvent = { [A in AuditAction]: EventOf<A> }[AuditAction];
