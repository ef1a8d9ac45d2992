/**
 * @trellis/policy: the access-policy engine. Pure functions over text and device lists; no I/O.
 *
 * - parsePolicy(text) -> { ok, policy, warnings } | { ok: false, errors }: JSON with comments,
 *   every issue located (line, column, path). Never throws.
 * - checkPolicy(text, devices): parse, warn about device names no device has, run the file's tests.
 * - new CompiledPolicy(policy, devices, base?): devices grouped into classes by what the selectors say
 *   about them; access(viewer, peer) -> { in, out } | null, visiblePeers, peersByAccess (a netmap's
 *   `access`), upsertDevice / removeDevice (incremental), classOf, classAccess(viewer class, peer
 *   class) -> { in, out, routesIn, routesOut } of interned relations (shared, equal ids are equal
 *   relations; null when all four are empty); with
 *   `base` (the version it replaces), relations no changed rule touches are taken from it.
 * - explain(compiled | { policy, devices }, src, dst, target?): allowed, and every rule, block or
 *   association that allows it.
 * - planPolicy(old, new, devices): per device, the peers and ports gained and lost;
 *   PolicyComparison: the same in steps (countChanges), and changedDevices() without names; where
 *   only rules differ, pairs no changed rule touches are skipped.
 * - RuleChange.between(old, new): the rules added and removed when nothing else differs;
 *   touches(old views, new views) says whether a pair's access may differ (classView gives views).
 * - mayApplyTag(policy, { email, role }, tag); cidrBlock(policy, name); innermostBlock(policy, ip).
 * - autoApproves(policy, device, prefix): the autoApprovers section approves a device's route.
 * - formatAccessRules(rules): `tcp 22,80-443; udp 53; icmp`, `all`, `none`.
 * - DEFAULT_POLICY_TEXT: allow-all, for new accounts.
 *
 * Errors: syntax first, then shape (zod), then references between sections (unknown group, tag,
 * block; cycles; duplicate prefixes); a later stage runs only when the earlier found nothing.
 * Device names that no device has are checkPolicy warnings, not errors.
 *
 * Semantics: rules only allow, and what is allowed is their union. Devices whose innermost block is
 * the same see each other fully; an association opens everything between two blocks (sub-blocks
 * included). A rule's dst may name a prefix outside the overlay: it opens those addresses through
 * gateways whose subnet routes (PolicyDevice.routes) overlap it; autogroup:internet opens exit
 * nodes' exit route only; `*` and 0.0.0.0/0 open every route, each listed by name. classAccess and
 * peersByAccess carry that as routesOut / routesIn, where EXIT_ROUTE means the exit route alone.
 * Emails compare case-insensitively. Access rules come out canonical (merged sorted
 * spans, tcp then udp then icmp, `[{}]` for everything), so equal JSON means equal rules.
 */
export { autoApproves } from './approvers';
export { cidrBlock, innermostBlock } from './blocks';
export { type CheckResult, checkPolicy } from './check';
export type { Access, ClassAccess } from './class-access';
export { CompiledPolicy } from './compile';
export { DEFAULT_POLICY_TEXT } from './default-policy';
export { type ExplainReason, type ExplainTarget, type Explanation, explain } from './explain';
export type { IssuePath, PolicyIssue } from './locations';
export type { DeviceView } from './match';
export { type ParseResult, parsePolicy } from './parse';
export { type PlanChange, type PlanEntry, PolicyComparison, planPolicy } from './plan';
export {
  EVERYTHING,
  formatAccessRules,
  formatPortSet,
  fromAccessRules,
  NOTHING,
  type PortSet,
  toAccessRules,
} from './ports';
export type { Relation } from './relations';
export type { RouteRelation } from './route-access';
export { RuleChange } from './rule-change';
export { mayApplyTag, type TagApplier } from './tags';
export type {
  AutoApprovers,
  DeviceNameRef,
  Policy,
  PolicyAssociation,
  PolicyBlock,
  PolicyDevice,
  PolicyRule,
  PolicyTestCase,
} from './types';
