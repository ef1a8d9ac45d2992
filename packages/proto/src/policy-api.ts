import { z } from 'zod';
import { AccessRules } from './access';
import { PlainText } from './common';

/**
 * The access policy over the admin socket and the HTTP API: get, check, plan, apply, history,
 * rollback and explain. The policy itself is JSON with comments, kept verbatim.
 */

/** Largest policy text accepted (a policy of a few thousand rules fits). */
export const MAX_POLICY_BYTES = 1024 * 1024;

export const PolicyText = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s) <= MAX_POLICY_BYTES, `must be at most ${MAX_POLICY_BYTES} bytes`);

/** An error or warning with where it is in the policy text (1-based line and column). */
export const PolicyIssueInfo = z.object({
  message: z.string(),
  line: z.number().int(),
  column: z.number().int(),
  path: z.array(z.union([z.string(), z.number()])),
});
export type PolicyIssueInfo = z.infer<typeof PolicyIssueInfo>;

export const PolicyCheckResult = z.object({
  ok: z.boolean(),
  errors: z.array(PolicyIssueInfo),
  warnings: z.array(PolicyIssueInfo),
  /** How many of the file's tests ran (all passed when ok). */
  tests: z.number().int(),
});
export type PolicyCheckResult = z.infer<typeof PolicyCheckResult>;

/** Peers with which one device gains (or loses) the same ports in one direction. */
export const PolicyPlanChange = z.object({
  /** `in`: what those peers may open on the device; `out`: what the device may open on them. */
  direction: z.enum(['in', 'out']),
  peers: z.array(z.string()),
  /** The ports, for people: `tcp 22; icmp`, `all`. */
  text: z.string(),
});
export const PolicyDevicePlan = z.object({
  device: z.string(),
  gains: z.array(PolicyPlanChange),
  losses: z.array(PolicyPlanChange),
});
export type PolicyDevicePlan = z.infer<typeof PolicyDevicePlan>;

export const PolicyPlanResult = PolicyCheckResult.extend({
  /** Version the plan compares with (the one in force). */
  fromVersion: z.number().int(),
  devices: z.array(PolicyDevicePlan),
});
export type PolicyPlanResult = z.infer<typeof PolicyPlanResult>;

export const PolicyVersionInfo = z.object({
  version: z.number().int(),
  appliedBy: z.string(),
  appliedAt: z.string(),
  /** The version this one restored, for a rollback. */
  rollbackOf: z.number().int().nullable(),
  bytes: z.number().int(),
});
export type PolicyVersionInfo = z.infer<typeof PolicyVersionInfo>;

/** The policy in force; version 0 is the default of an account that never applied one. */
export const PolicyDocument = PolicyVersionInfo.extend({ text: z.string() });
export type PolicyDocument = z.infer<typeof PolicyDocument>;

export const PolicyApplyResult = z.object({
  version: z.number().int(),
  warnings: z.array(PolicyIssueInfo),
  /** Devices whose peers or ports changed. */
  devicesChanged: z.number().int(),
});
export type PolicyApplyResult = z.infer<typeof PolicyApplyResult>;

export const PolicyExplainRequest = z.strictObject({
  src: PlainText(128).min(1),
  /** `NAME`, `NAME:PORT` (tcp), `NAME:tcp/PORT`, `NAME:udp/PORT` or `NAME:icmp`. */
  dst: PlainText(160).min(1),
});

export const PolicyExplainResult = z.object({
  allowed: z.boolean(),
  /** Every rule (or block, or association) that allows it; empty when denied. */
  reasons: z.array(
    z.object({
      kind: z.enum(['rule', 'cidr', 'association']),
      index: z.number().int().optional(),
      line: z.number().int(),
      text: z.string(),
    }),
  ),
  /** What SRC may open on DST and the reverse, whole. */
  out: AccessRules,
  in: AccessRules,
});
export type PolicyExplainResult = z.infer<typeof PolicyExplainResult>;

/** A check, plan or apply that found errors: the HTTP 422 body and the admin socket's error detail. */
export const PolicyRejection = z.object({
  error: z.literal('invalid_policy'),
  message: z.string(),
  errors: z.array(PolicyIssueInfo),
});
