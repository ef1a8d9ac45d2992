import { DEFAULT_POLICY_TEXT, type Policy, type PolicyDevice, parsePolicy } from '@trellis/policy';
import { and, desc, eq } from 'drizzle-orm';
import { type DeviceRow, deviceRoutes, devices, type PolicyRow, policies } from '../db/schema';
import type { Tx } from '../services/tx';

/** The policy in force: the highest version, or version 0 (the default) when none was applied. */
export interface PolicyVersion {
  version: number;
  text: string;
  appliedBy: string;
  appliedAt: Date;
  rollbackOf: number | null;
}

export function defaultPolicyVersion(createdAt: Date): PolicyVersion {
  return {
    version: 0,
    text: DEFAULT_POLICY_TEXT,
    appliedBy: 'default',
    appliedAt: createdAt,
    rollbackOf: null,
  };
}

export function versionOf(row: PolicyRow): PolicyVersion {
  return {
    version: row.version,
    text: row.text,
    appliedBy: row.appliedBy,
    appliedAt: row.createdAt,
    rollbackOf: row.rollbackOf,
  };
}

/** Parsed policies by account and version: a large policy takes ~100 ms to parse. */
const parsedCache = new Map<string, Policy>();
const PARSED_CACHE_SIZE = 32;

/**
 * The account's policy in force, parsed (once per version and process). Throws when the stored
 * text does not parse: it was checked when applied, so that is damage, not user error.
 */
export async function currentParsedPolicy(tx: Pick<Tx, 'select'>, accountId: string): Promise<Policy> {
  const v = await currentPolicy(tx, accountId);
  const parsed = parsedPolicyOf(accountId, v);
  if (!parsed) throw new Error(`the policy in force (version ${v.version}) no longer parses`);
  return parsed;
}

/** Version `v` of the account's policy, parsed (once per version and process); null: it does not parse. */
export function parsedPolicyOf(accountId: string, v: PolicyVersion): Policy | null {
  const key = `${accountId}/${v.version}/${v.appliedAt.getTime()}/${v.text.length}`;
  const known = parsedCache.get(key);
  if (known) return known;
  const parsed = parsePolicy(v.text);
  if (!parsed.ok) return null;
  if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value!);
  parsedCache.set(key, parsed.policy);
  return parsed.policy;
}

/** Reads the account's policy in force inside `tx` (or the default). */
export async function currentPolicy(tx: Pick<Tx, 'select'>, accountId: string): Promise<PolicyVersion> {
  const [row] = await tx
    .select()
    .from(policies)
    .where(eq(policies.accountId, accountId))
    .orderBy(desc(policies.version))
    .limit(1);
  return row ? versionOf(row) : defaultPolicyVersion(new Date(0));
}

export async function policyVersion(
  tx: Pick<Tx, 'select'>,
  accountId: string,
  version: number,
): Promise<PolicyVersion | undefined> {
  const [row] = await tx
    .select()
    .from(policies)
    .where(and(eq(policies.accountId, accountId), eq(policies.version, version)));
  if (row) return versionOf(row);
  return version === 0 ? defaultPolicyVersion(new Date(0)) : undefined;
}

export async function policyHistory(tx: Pick<Tx, 'select'>, accountId: string): Promise<PolicyVersion[]> {
  const rows = await tx
    .select()
    .from(policies)
    .where(eq(policies.accountId, accountId))
    .orderBy(desc(policies.version));
  return rows.map(versionOf);
}

/** A device as the policy sees it. */
export function policyDevice(
  row: Pick<DeviceRow, 'id' | 'name' | 'address' | 'tags' | 'userEmail'>,
): PolicyDevice {
  return {
    id: row.id,
    name: row.name,
    address: row.address,
    tags: row.tags,
    ...(row.userEmail !== null ? { user: row.userEmail } : {}),
  };
}

/** The account's devices as the policy sees them, with the routes they serve (approved, advertised). */
export async function accountPolicyDevices(
  tx: Pick<Tx, 'select'>,
  accountId: string,
): Promise<PolicyDevice[]> {
  const rows = await tx
    .select({
      id: devices.id,
      name: devices.name,
      address: devices.address,
      tags: devices.tags,
      userEmail: devices.userEmail,
    })
    .from(devices)
    .where(eq(devices.accountId, accountId));
  const served = await tx
    .select({ deviceId: deviceRoutes.deviceId, prefix: deviceRoutes.prefix })
    .from(deviceRoutes)
    .where(
      and(
        eq(deviceRoutes.accountId, accountId),
        eq(deviceRoutes.advertised, true),
        eq(deviceRoutes.approved, true),
      ),
    );
  const routes = new Map<string, string[]>();
  for (const r of served) routes.set(r.deviceId, [...(routes.get(r.deviceId) ?? []), r.prefix]);
  return rows.map((row) => {
    const list = routes.get(row.id)?.sort();
    return { ...policyDevice(row), ...(list ? { routes: list } : {}) };
  });
}
