import {
  type AdvertiseMessage,
  type DeviceInfo,
  type DeviceState,
  MAX_DEVICE_ROUTES,
  type RouteRow,
} from '@trellis/proto';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { accounts, type DeviceRow, deviceRoutes, devices } from '../db/schema';
import { badRequest, conflict, notFound } from '../domain/errors';
import { currentPolicy, type PolicyVersion } from '../policy/policy-store';
import type { TagActor } from '../policy/tag-rules';
import { deviceNamed, retagDevice } from '../services/device-edits';
import { toDeviceState } from '../services/device-state';
import type { DevicesService } from '../services/devices.service';
import { bumpSerial, type Tx } from '../services/tx';
import { type AutoApprover, policyAutoApprover } from './auto-approval';
import {
  advertisedRows,
  approvedPrefixes,
  approvedRows,
  type RouteRec,
  sameRows,
  stateRoutes,
} from './route-plan';
import { primaryOf } from './route-primary';
import { readRoutes, writeRoutes } from './route-store';

type Wanted = (current: readonly RouteRec[]) => { routes: readonly string[]; down: readonly string[] };

/** What the device advertises now, again (to re-plan it under another policy or other tags). */
const sameAdvertised: Wanted = (current) => {
  const advertised = current.filter((r) => r.advertised);
  return {
    routes: advertised.map((r) => r.prefix),
    down: advertised.filter((r) => r.down).map((r) => r.prefix),
  };
};

/** The lock an account's serial bump takes, taken before reading its policy. */
async function lockAccount(tx: Tx, accountId: string): Promise<void> {
  await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for('no key update');
}

/** Namespace of the advisory lock below (its two-key form: apart from the migrations' one-key lock). */
const ROUTE_OWNERS_LOCK = 7_402_114;

/**
 * An account's advisory lock, the first lock of an advertisement (which may make a device a
 * gateway) and of a policy apply (which re-plans every gateway). Under it the set of gateways
 * cannot change, so an apply locks all of their rows before the account row, in the order every
 * device writer takes them (device, then account). Locking newly committed gateways after the
 * account deadlocked with a writer holding one of them and waiting for the account.
 */
async function lockRouteOwners(tx: Tx, accountId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${ROUTE_OWNERS_LOCK}, hashtext(${accountId}))`);
}

/** See RoutesService.lockForPolicy. */
export interface PolicyRoutes {
  apply(policy: PolicyVersion, by: Actor): Promise<() => Promise<void>>;
}

/** A committed change of a device's routes: the device as it now is, and the serial it took. */
interface RoutesChange {
  row: DeviceRow;
  next: RouteRec[];
  serial: number;
}

/**
 * Gateways' routes (issue 14): what devices advertise, what admins and the policy's autoApprovers
 * approve. Every change bumps the account's serial in its transaction and is published as a
 * device-upsert, so every instance's netmaps follow; nothing changed costs no serial.
 */
export class RoutesService {
  constructor(
    private readonly db: Db,
    private readonly devices: DevicesService,
    private readonly autoApprover: AutoApprover = policyAutoApprover,
  ) {}

  /** A device's `advertise` (sent on every reconnection): replaces what it advertised. */
  async advertise(deviceId: string, msg: AdvertiseMessage, by: Actor): Promise<boolean> {
    // Most devices route nothing: their reconnection costs one read and no transaction.
    if (msg.routes.length === 0 && !(await readRoutes(this.db, deviceId)).some((r) => r.advertised)) {
      return false;
    }
    return this.readvertise(deviceId, () => ({ routes: msg.routes, down: msg.down ?? [] }), by);
  }

  /**
   * The routes part of a policy apply, in its transaction: `lock` first (the account's route lock,
   * then the gateways' device rows, before the account row), `apply` once the new version is
   * inserted. Both commit or neither; what `apply` returns publishes the changes after the commit.
   */
  async lockForPolicy(tx: Tx, accountId: string): Promise<PolicyRoutes> {
    await lockRouteOwners(tx, accountId);
    // Every gateway there is until the commit: an advertisement waits for the route lock.
    const owners = await this.lockOwners(tx, accountId);
    return {
      apply: async (policy, by) => {
        const changes: RoutesChange[] = [];
        for (const row of owners) {
          const change = await this.replan(tx, row, sameAdvertised, policy, by);
          if (change) changes.push(change);
        }
        return async () => {
          for (const change of changes) await this.publish(change);
        };
      },
    };
  }

  /** The account's devices with advertised routes, locked in id order. */
  private lockOwners(tx: Tx, accountId: string): Promise<DeviceRow[]> {
    const owners = tx
      .selectDistinct({ id: deviceRoutes.deviceId })
      .from(deviceRoutes)
      .where(and(eq(deviceRoutes.accountId, accountId), eq(deviceRoutes.advertised, true)));
    return tx
      .select()
      .from(devices)
      .where(inArray(devices.id, owners))
      .orderBy(asc(devices.id))
      .for('update');
  }

  /**
   * Replaces a device's tags (see retagDevice) and re-plans its routes in the same transaction:
   * tags decide what the autoApprovers approve, so both commit or neither.
   */
  async setTags(
    accountId: string,
    accountName: string,
    idOrName: string,
    tags: readonly string[],
    actor: TagActor,
    by: Actor,
  ): Promise<DeviceInfo> {
    const { edit, change } = await this.transaction(async (tx) => {
      const edit = await retagDevice(tx, accountId, accountName, idOrName, tags, actor, by);
      // The device row is locked; the account next, before the policy is read (as readvertise).
      await lockAccount(tx, accountId);
      return { edit, change: await this.replan(tx, edit.row, sameAdvertised, undefined, by) };
    });
    // A routes change carries the new tags too, at a later serial.
    if (change) await this.publish(change);
    else if (edit.serial !== null) {
      const device = toDeviceState(edit.row);
      await this.devices.publishUpserts([{ accountId, serial: edit.serial, device }]);
    }
    return this.devices.one(accountId, accountName, edit.row.id);
  }

  /** Applies what the device advertises (`wanted`, from its current rows) under the policy in force. */
  private async readvertise(deviceId: string, wanted: Wanted, by: Actor): Promise<boolean> {
    const change = await this.transaction(async (tx) => {
      const [known] = await tx
        .select({ accountId: devices.accountId })
        .from(devices)
        .where(eq(devices.id, deviceId));
      if (!known) return undefined;
      // The route lock, the device, then the account: a policy apply waits for this transaction
      // or this one waits for it and reads its version. Not FOR SHARE on the account: two sharers
      // that both bump the serial would deadlock; NO KEY UPDATE is the lock that bump takes anyway.
      await lockRouteOwners(tx, known.accountId);
      const [row] = await tx.select().from(devices).where(eq(devices.id, deviceId)).for('update');
      if (!row) return undefined;
      await lockAccount(tx, row.accountId);
      return this.replan(tx, row, wanted, undefined, by);
    });
    if (!change) return false;
    await this.publish(change);
    return true;
  }

  /**
   * Re-plans the rows of a locked device under `policy` (default: the one in force, read only
   * when a prefix needs an auto-approval decision) and writes them when they changed.
   */
  private async replan(
    tx: Tx,
    row: DeviceRow,
    wanted: Wanted,
    policy: PolicyVersion | undefined,
    by: Actor,
  ): Promise<RoutesChange | undefined> {
    const current = await readRoutes(tx, row.id);
    let used = policy;
    let decide: ((prefix: string) => boolean) | undefined;
    const autoApproves = async (prefix: string) => {
      used ??= await currentPolicy(tx, row.accountId);
      decide ??= this.autoApprover(row.accountId, used, toDeviceState(row));
      return decide(prefix);
    };
    const { routes, down } = wanted(current);
    const decided = new Map<string, boolean>();
    for (const prefix of routes) {
      const r = current.find((c) => c.prefix === prefix);
      if (!(r?.approved && !r.autoApproved)) decided.set(prefix, await autoApproves(prefix));
    }
    const next = advertisedRows(current, routes, down, new Date(), (p) => decided.get(p) ?? false);
    if (sameRows(current, next)) return undefined;
    const autoOf = (rows: readonly RouteRec[]) =>
      new Set(rows.filter((r) => r.autoApproved).map((r) => r.prefix));
    const [was, now] = [autoOf(current), autoOf(next)];
    const prefixes = [...now].filter((p) => !was.has(p));
    // Withdrawn by the policy (not by the device taking the route back).
    const withdrawn = next.filter((r) => was.has(r.prefix) && !r.approved).map((r) => r.prefix);
    if (prefixes.length > 0 || withdrawn.length > 0) {
      await recordAudit(tx, by, {
        action: 'routes.auto-approved',
        accountId: row.accountId,
        target: { kind: 'device', id: row.id, name: row.name },
        details: { prefixes, withdrawn, policyVersion: used?.version ?? 0 },
      });
    }
    return this.write(tx, row, next);
  }

  /** An admin's approved set for a device (SetApprovedRoutesRequest); returns the device's rows. */
  setApproved(
    accountId: string,
    accountName: string,
    idOrName: string,
    approved: readonly string[],
    by: Actor,
  ): Promise<RouteRow[]> {
    return this.reapprove(accountId, accountName, idOrName, () => approved, by);
  }

  /** Adds prefixes to, or takes them from, the device's approved set (the admin CLI). */
  changeApproved(
    accountId: string,
    accountName: string,
    idOrName: string,
    change: { add?: readonly string[]; remove?: readonly string[] },
    by: Actor,
  ): Promise<RouteRow[]> {
    const approved = (current: readonly RouteRec[]) => [
      ...approvedPrefixes(current).filter((p) => !change.remove?.includes(p)),
      ...(change.add ?? []),
    ];
    return this.reapprove(accountId, accountName, idOrName, approved, by);
  }

  private async reapprove(
    accountId: string,
    accountName: string,
    idOrName: string,
    approved: (current: readonly RouteRec[]) => readonly string[],
    by: Actor,
  ): Promise<RouteRow[]> {
    const { row, change } = await this.transaction(async (tx) => {
      const [row] = await tx.select().from(devices).where(deviceNamed(accountId, idOrName)).for('update');
      if (!row) throw notFound(`no device "${idOrName}" in account ${accountName}`);
      const current = await readRoutes(tx, row.id);
      const wanted = new Set(approved(current));
      const byPolicy = current.filter((r) => r.autoApproved && !wanted.has(r.prefix)).map((r) => r.prefix);
      if (byPolicy.length > 0) {
        // It would come back at the next advertisement.
        throw conflict(
          `${byPolicy.join(', ')} approved by the policy's autoApprovers: change the policy to withdraw it`,
        );
      }
      const next = approvedRows(current, [...wanted]);
      if (sameRows(current, next)) return { row, change: undefined };
      if (next.length > MAX_DEVICE_ROUTES && next.length > current.length) {
        throw badRequest(
          `a device has at most ${MAX_DEVICE_ROUTES} routes (advertised or approved); ${row.name} would have ${next.length}`,
        );
      }
      await recordAudit(tx, by, {
        action: 'routes.approved',
        accountId,
        target: { kind: 'device', id: row.id, name: row.name },
        details: { before: approvedPrefixes(current), after: approvedPrefixes(next) },
      });
      return { row, change: await this.write(tx, row, next) };
    });
    if (change) await this.publish(change);
    return (await this.list(accountId)).filter((r) => r.deviceId === row.id);
  }

  /** Every route of the account (with `ownedBy`: only that user's devices'), with the primary marked. */
  async list(accountId: string, ownedBy?: string): Promise<RouteRow[]> {
    const rows = await this.db
      .select({
        route: deviceRoutes,
        name: devices.name,
        connection: devices.connectionId,
        user: devices.userEmail,
      })
      .from(deviceRoutes)
      .innerJoin(devices, eq(deviceRoutes.deviceId, devices.id))
      .where(eq(deviceRoutes.accountId, accountId));
    // Sorted here: the database's collation may order punctuation differently.
    const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    rows.sort((a, b) => cmp(a.route.prefix, b.route.prefix) || cmp(a.name, b.name));
    // The primary is the account's, whoever asks: a member sees whether theirs carries the prefix.
    const primary = primaryOf(
      rows.map((r) => ({
        deviceId: r.route.deviceId,
        prefix: r.route.prefix,
        eligible: r.connection !== null && r.route.approved && r.route.advertised && !r.route.down,
        since: r.route.advertisedAt?.getTime() ?? 0,
      })),
    );
    const shown = ownedBy === undefined ? rows : rows.filter((r) => r.user === ownedBy);
    return shown.map((r) => ({
      deviceId: r.route.deviceId,
      deviceName: r.name,
      prefix: r.route.prefix,
      advertised: r.route.advertised,
      approved: r.route.approved,
      autoApproved: r.route.autoApproved,
      down: r.route.down,
      online: r.connection !== null,
      primary: primary.get(r.route.prefix) === r.route.deviceId,
      since: r.route.advertisedAt?.toISOString() ?? null,
    }));
  }

  /** A transaction run again when PostgreSQL aborts it as a deadlock victim (a backstop). */
  private transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return withConflictRetry(() => this.db.transaction(fn));
  }

  private async write(tx: Tx, row: DeviceRow, next: RouteRec[]): Promise<RoutesChange> {
    await writeRoutes(tx, row, next);
    return { row, next, serial: await bumpSerial(tx, row.accountId) };
  }

  private publish({ row, next, serial }: RoutesChange): Promise<void> {
    const device: DeviceState = toDeviceState(row, stateRoutes(next));
    return this.devices.publishUpserts([{ accountId: row.accountId, serial, device }]);
  }
}
