import { z } from 'zod';
import { PlainText } from './common';

/**
 * Every kind of change the audit log records. Dotted: `<target kind>.<what happened>`, so that a
 * prefix (`device.`) filters one kind of target.
 */
export const AUDIT_ACTIONS = [
  'account.created',
  'account.dns-changed',
  'account.settings-changed',
  'user.created',
  'user.role-changed',
  'user.removed',
  'user.owner-password-reset',
  'user.signed-in',
  'user.sign-in-failed',
  'user.signed-out-everywhere',
  'device.enrolled',
  'device.virtual-added',
  'device.renamed',
  'device.tagged',
  'device.removed',
  'device.approved',
  'device.rekeyed',
  'device.key-rotated',
  'device-authorization.approved',
  'device-authorization.denied',
  'setup-key.created',
  'setup-key.revoked',
  'policy.applied',
  'policy.rolled-back',
  'relay-token.created',
  'relay-token.revoked',
  'relay.registered',
  'routes.approved',
  'routes.auto-approved',
] as const;
export const AuditAction = z.enum(AUDIT_ACTIONS);
export type AuditAction = z.infer<typeof AuditAction>;

/** Who made a change: a signed-in user, the broker's admin CLI, a device, a relay, or the broker itself. */
export const AuditActorKind = z.enum(['user', 'cli', 'device', 'system', 'relay']);
export type AuditActorKind = z.infer<typeof AuditActorKind>;

/** The most events one page of the audit log holds. */
export const MAX_AUDIT_PAGE = 200;

/**
 * One page of the account's audit log (API_PATHS.audit), newest first, as query parameters: the
 * events older than `before` (the previous page's `next`) whose action starts with `action` and
 * whose actor or target contains `q`.
 */
export const AuditQuery = z.strictObject({
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(50),
  /** An action or the start of one (`device.`). */
  action: z
    .string()
    .max(64)
    .regex(/^[a-z.-]*$/, 'must be an action or the start of one, e.g. device.')
    .optional(),
  /** Part of the actor's email or the target's name or id (any case). */
  q: PlainText(128).optional(),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

export const AuditEventInfo = z.object({
  id: z.number().int().positive(),
  at: z.string(),
  actor: z.object({
    kind: AuditActorKind,
    userId: z.string().nullable(),
    email: z.string().nullable(),
    /** The client address the change came from; null when not over the network (CLI, the broker). */
    address: z.string().nullable(),
  }),
  action: AuditAction,
  target: z.object({ kind: z.string(), id: z.string().nullable(), name: z.string().nullable() }),
  /** What changed, never a secret (a setup key shows its prefix only). */
  details: z.record(z.string(), z.unknown()),
});
export type AuditEventInfo = z.infer<typeof AuditEventInfo>;

export const AuditPage = z.object({
  events: z.array(AuditEventInfo),
  /** The `before` of the next (older) page; null: this is the last. */
  next: z.number().int().positive().nullable(),
});
export type AuditPage = z.infer<typeof AuditPage>;
