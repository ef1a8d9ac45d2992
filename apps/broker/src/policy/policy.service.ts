import {
  CompiledPolicy,
  checkPolicy,
  type ExplainTarget,
  explain,
  PolicyComparison,
  type PolicyDevice,
  type PolicyIssue,
  parsePolicy,
  planPolicy,
} from '@trellis/policy';
import type {
  PolicyApplyResult,
  PolicyCheckResult,
  PolicyDocument,
  PolicyExplainResult,
  PolicyIssueInfo,
  PolicyPlanResult,
  PolicyVersionInfo,
} from '@trellis/proto';
import { eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { accounts, policies } from '../db/schema';
import { badRequest, DomainError, notFound } from '../domain/errors';
import type { EventBus } from '../events/event-bus';
import type { RoutesService } from '../routes/routes.service';
import { bumpSerial, type Tx } from '../services/tx';
import { BACKGROUND_SLICE_MS, inSlices } from './in-slices';
import {
  accountPolicyDevices,
  currentPolicy,
  type PolicyVersion,
  policyHistory,
  policyVersion,
  versionOf,
} from './policy-store';

/** Whether two reads of an account's devices are the same as far as a policy can tell. */
function sameDevices(a: readonly PolicyDevice[], b: readonly PolicyDevice[]): boolean {
  if (a.length !== b.length) return false;
  const key = (list: readonly PolicyDevice[]) =>
    JSON.stringify([...list].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)));
  return key(a) === key(b);
}

/** A policy with errors: never stored, never sent to a device. The message lists every error. */
export class PolicyRejectedError extends DomainError {
  constructor(readonly errors: readonly PolicyIssueInfo[]) {
    super(422, 'invalid_policy', `the policy is invalid:\n${formatIssues(errors)}`);
  }
}

export function formatIssues(issues: readonly PolicyIssueInfo[]): string {
  return issues.map((i) => `  line ${i.line}, column ${i.column}: ${i.message}`).join('\n');
}

function issueInfo(i: PolicyIssue): PolicyIssueInfo {
  return { message: i.message, line: i.line, column: i.column, path: [...i.path] };
}

function versionInfo(v: PolicyVersion): PolicyVersionInfo {
  return {
    version: v.version,
    appliedBy: v.appliedBy,
    appliedAt: v.appliedAt.toISOString(),
    rollbackOf: v.rollbackOf,
    bytes: Buffer.byteLength(v.text),
  };
}

/**
 * An account's access policy: versions kept whole (comments and all), checked against the
 * account's devices and the file's own tests before anything is stored. Applying bumps the
 * account's netmap serial and tells every instance (`policy-changed`), which re-filters its netmaps.
 */
export class PolicyService {
  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly logger?: Logger,
    /** The routes its autoApprovers now approve, or no longer: re-planned in the apply's transaction. */
    private readonly routes?: Pick<RoutesService, 'lockForPolicy'>,
  ) {}

  async get(accountId: string): Promise<PolicyDocument> {
    const v = await currentPolicy(this.db, accountId);
    return { ...versionInfo(v), text: v.text };
  }

  async version(accountId: string, version: number): Promise<PolicyDocument> {
    const v = await policyVersion(this.db, accountId, version);
    if (!v) throw notFound(`no policy version ${version} in this account`);
    return { ...versionInfo(v), text: v.text };
  }

  async history(accountId: string): Promise<PolicyVersionInfo[]> {
    return (await policyHistory(this.db, accountId)).map(versionInfo);
  }

  async check(accountId: string, text: string): Promise<PolicyCheckResult> {
    const devices = await accountPolicyDevices(this.db, accountId);
    const result = checkPolicy(text, devices);
    return {
      ok: result.ok,
      errors: result.errors.map(issueInfo),
      warnings: result.warnings.map(issueInfo),
      tests: result.policy?.tests.length ?? 0,
    };
  }

  /** Per device, the peers and ports it gains and loses if `text` replaced the policy in force. */
  async plan(accountId: string, text: string): Promise<PolicyPlanResult> {
    const devices = await accountPolicyDevices(this.db, accountId);
    const current = await currentPolicy(this.db, accountId);
    const result = checkPolicy(text, devices);
    const base = {
      ok: result.ok,
      errors: result.errors.map(issueInfo),
      warnings: result.warnings.map(issueInfo),
      tests: result.policy?.tests.length ?? 0,
      fromVersion: current.version,
    };
    if (!result.ok || !result.policy) return { ...base, devices: [] };
    const old = parsePolicy(current.text);
    if (!old.ok) throw new Error(`the stored policy version ${current.version} no longer parses`);
    const plan = planPolicy(old.policy, result.policy, devices).map((entry) => ({
      device: entry.device,
      gains: entry.gains.map(({ direction, peers, text }) => ({ direction, peers, text })),
      losses: entry.losses.map(({ direction, peers, text }) => ({ direction, peers, text })),
    }));
    return { ...base, devices: plan };
  }

  /**
   * Stores `text` as the next version if it is valid; throws PolicyRejectedError otherwise. The
   * check runs before the account row is locked (on a large account it takes long), against the
   * devices as they were; under the lock it runs again only if they changed meanwhile (the lock
   * orders applies and device changes). The count of devices it changes, against the version it
   * replaced, is made after the change is published, so devices do not wait for it.
   */
  async apply(
    accountId: string,
    text: string,
    appliedBy: string,
    rollbackOf: number | null = null,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<PolicyApplyResult> {
    const checkedDevices = await accountPolicyDevices(this.db, accountId);
    const checked = checkPolicy(text, checkedDevices);
    if (!checked.ok) throw new PolicyRejectedError(checked.errors.map(issueInfo));
    const outcome = await this.transaction(async (tx) => {
      // The account's route lock and its gateways' device rows first (devices before the account,
      // as everywhere), then the account row: one writer per account at a time.
      const routes = await this.routes?.lockForPolicy(tx, accountId);
      const [account] = await tx.select().from(accounts).where(eq(accounts.id, accountId)).for('update');
      if (!account) throw notFound('no such account');
      const devices = await accountPolicyDevices(tx, accountId);
      const result = sameDevices(devices, checkedDevices) ? checked : checkPolicy(text, devices);
      if (!result.ok) throw new PolicyRejectedError(result.errors.map(issueInfo));
      const replaced = await currentPolicy(tx, accountId);
      const version = replaced.version + 1;
      const [inserted] = await tx
        .insert(policies)
        .values({ accountId, version, text, appliedBy, rollbackOf })
        .returning();
      const target = { kind: 'policy' as const, id: String(version), name: `version ${version}` };
      await recordAudit(
        tx,
        by,
        rollbackOf === null
          ? {
              action: 'policy.applied',
              accountId,
              target,
              details: { version, bytes: Buffer.byteLength(text) },
            }
          : { action: 'policy.rolled-back', accountId, target, details: { version, restored: rollbackOf } },
      );
      const serial = await bumpSerial(tx, accountId);
      // Both commit or neither: no crash leaves routes approved by a version no longer in force.
      const publishRoutes = await routes?.apply(versionOf(inserted!), by);
      return { version, serial, replaced: replaced.text, result, devices, publishRoutes };
    });
    await this.announce(accountId, outcome);
    await outcome.publishRoutes?.().catch((err: Error) => {
      // Committed: the instances' serial check finds the account behind and reloads it.
      this.logger?.warn({ err: err.message }, 'policy applied; its route changes not published');
    });
    const { result, devices } = outcome;
    const old = parsePolicy(outcome.replaced);
    let changed = devices.length;
    if (old.ok) {
      const comparison = new PolicyComparison(old.policy, result.policy, devices);
      await inSlices(comparison.countChanges(), BACKGROUND_SLICE_MS);
      changed = comparison.changedDevices();
    }
    return { version: outcome.version, warnings: result.warnings.map(issueInfo), devicesChanged: changed };
  }

  /** Run again if PostgreSQL picks it as a deadlock victim (a backstop: see lockForPolicy). */
  private transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return withConflictRetry(() => this.db.transaction(fn));
  }

  private async announce(accountId: string, outcome: { version: number; serial: number }): Promise<void> {
    try {
      await this.bus.publish({
        kind: 'policy-changed',
        accountId,
        serial: outcome.serial,
        version: outcome.version,
      });
    } catch (err) {
      // Committed: the instances' serial check finds the account behind and reloads it.
      this.logger?.warn({ err: (err as Error).message }, 'policy applied but not published');
    }
  }

  /** Applies version `version`'s text again, as a new version. */
  async rollback(
    accountId: string,
    version: number,
    appliedBy: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<PolicyApplyResult> {
    const target = await policyVersion(this.db, accountId, version);
    if (!target) throw notFound(`no policy version ${version} in this account`);
    return this.apply(accountId, target.text, appliedBy, version, by);
  }

  /** May SRC reach DST (`NAME`, `NAME:PORT`, `NAME:udp/PORT`, `NAME:icmp`), and by which rule. */
  async explain(accountId: string, src: string, dst: string): Promise<PolicyExplainResult> {
    const devices = await accountPolicyDevices(this.db, accountId);
    const current = await currentPolicy(this.db, accountId);
    const parsed = parsePolicy(current.text);
    if (!parsed.ok) throw new Error(`the stored policy version ${current.version} no longer parses`);
    const { name, target } = parseExplainTarget(dst);
    const compiled = new CompiledPolicy(parsed.policy, devices);
    const answer = explain(compiled, src, name, target);
    if (answer.missing && answer.missing.length > 0) {
      throw notFound(`no device named ${answer.missing.join(' or ')} in this account`);
    }
    const byName = (ref: string) => devices.find((d) => d.name === ref || d.id === ref)?.id ?? ref;
    const access = compiled.access(byName(src), byName(name));
    return {
      allowed: answer.allowed,
      reasons: answer.reasons.map((r) => ({
        kind: r.kind,
        ...(r.index !== undefined ? { index: r.index } : {}),
        line: r.line,
        text: r.text,
      })),
      out: access?.out ?? [],
      in: access?.in ?? [],
    };
  }
}

/** `NAME`, `NAME:PORT` (tcp), `NAME:tcp/PORT`, `NAME:udp/PORT` or `NAME:icmp`. */
export function parseExplainTarget(dst: string): { name: string; target?: ExplainTarget } {
  const colon = dst.lastIndexOf(':');
  if (colon < 0) return { name: dst };
  const name = dst.slice(0, colon);
  const spec = dst.slice(colon + 1).toLowerCase();
  if (spec === 'icmp') return { name, target: { proto: 'icmp' } };
  const m = /^(?:(tcp|udp)\/)?(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw badRequest(`"${dst}" is not NAME, NAME:PORT, NAME:tcp/PORT, NAME:udp/PORT or NAME:icmp`);
  }
  return { name, target: { proto: (m[1] ?? 'tcp') as 'tcp' | 'udp', port } };
}
