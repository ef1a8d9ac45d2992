import {
  EXIT_ROUTE,
  ipv4CidrWithin,
  OVERLAY_PREFIX,
  parseIpv4Cidr,
  routePrefixProblem,
} from '@trellis/proto';
import { z } from 'zod';
import { clip, parsePortSpec } from './ports';
import { BLOCK_NAME_RE, GROUP_RE, parseTestTarget, TAG_RE } from './selectors';

/**
 * The shape of a policy file. Only what one value can tell is checked here; references between
 * sections (unknown groups, cycles, nesting of blocks) are resolve.ts's.
 */

/** Bounds that keep a hostile file cheap; far above what a real account writes. */
export const LIMITS = { entries: 10_000, text: 1 << 20 } as const;

const list = <T extends z.ZodType>(item: T) => z.array(item).max(LIMITS.entries);
const str = z.string().max(320);

const Members = list(str);

const GroupName = z.string().regex(GROUP_RE, 'must be group:NAME with NAME a-z, 0-9 and inner hyphens');
const TagKey = z.string().max(64).regex(TAG_RE, 'must be tag:NAME with NAME a-z, 0-9 and inner hyphens');
const BlockName = z.string().max(63).regex(BLOCK_NAME_RE, 'must be a block name: a-z, 0-9 and inner hyphens');

/** Host bits must be clear: `100.64.0.7/16` is more likely a typo than a block. */
export const BlockCidr = z.string().superRefine((s, ctx) => {
  const c = parseIpv4Cidr(s);
  if (!c) return void ctx.addIssue({ code: 'custom', message: `"${clip(s)}" is not a prefix a.b.c.d/n` });
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  if ((c.base & mask) >>> 0 !== c.base) {
    ctx.addIssue({ code: 'custom', message: `"${s}" has host bits set` });
  } else if (!ipv4CidrWithin(s, OVERLAY_PREFIX)) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not inside the overlay ${OVERLAY_PREFIX}` });
  }
});

const PortSpec = z.string().superRefine((s, ctx) => {
  const r = parsePortSpec(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const TestTarget = z.string().superRefine((s, ctx) => {
  const r = parseTestTarget(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const Rule = z.strictObject({
  src: list(str).min(1, 'must name at least one source'),
  dst: list(str).min(1, 'must name at least one destination'),
  ports: list(PortSpec)
    .min(1, 'must name at least one port spec (leave "ports" out for everything)')
    .optional(),
});

/** A key of autoApprovers.routes: a subnet prefix (the exit route has its own `exitNode`). */
const ApprovedPrefix = z.string().superRefine((s, ctx) => {
  const problem =
    s === EXIT_ROUTE ? 'is the exit route: list its approvers in "exitNode"' : routePrefixProblem(s);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${clip(s)}" ${problem}` });
});

const AutoApprovers = z.strictObject({
  routes: z.record(ApprovedPrefix, Members).optional(),
  exitNode: Members.optional(),
});

const Test = z.strictObject({
  src: str,
  accept: list(TestTarget).optional(),
  deny: list(TestTarget).optional(),
});

export const PolicyFile = z.strictObject({
  groups: z.record(GroupName, Members).optional(),
  tagOwners: z.record(TagKey, Members).optional(),
  cidrs: z.record(BlockName, BlockCidr).optional(),
  associations: list(z.tuple([str, str])).optional(),
  rules: list(Rule).optional(),
  tests: list(Test).optional(),
  autoApprovers: AutoApprovers.optional(),
});
export type PolicyFile = z.infer<typeof PolicyFile>;
