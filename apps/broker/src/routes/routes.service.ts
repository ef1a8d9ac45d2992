import type { AdvertiseMessage, DeviceState, RouteRow } from '@trellis/proto';
import { and, eq } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { type DeviceRow, deviceRoutes, devices } from '../db/schema';
import { notFound } from '../domain/errors';
import { currentPolicy } from '../policy/policy-store';
import { deviceNamed } from '../services/device-edits';
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
    return this.readvertise(deviceId, () => ({ routes: msg.routes, down: msg.down ?? [] }), by);
  }

  /**
   * After a new policy version: each device's advertised routes are auto-approved (or no longer)
   * as that version says. Returns how many devices changed.
   */
  async applyPolicy(accountId: string, by: Actor): Promise<number> {
    const owners = await this.db
      .selectDistinct({ id: deviceRoutes.deviceId })
      .from(deviceRoutes)
      .where(and(eq(deviceRoutes.accountId, accountId), eq(deviceRoutes.advertised, true)));
    let changed = 0;
    for (const { id } of owners) if (await this.reevaluate(id, by)) changed += 1;
    return changed;
  }

  /** The device's advertised routes under the policy in force (its tags changed, say). */
  reevaluate(deviceId: string, by: Actor): Promise<boolean> {
    const same = (current: readonly RouteRec[]) => {
      const advertised = current.filter((r) => r.advertised);
      return {
        routes: advertised.map((r) => r.prefix),
        down: advertised.filter((r) => r.down).map((r) => r.prefix),
      };
    };
    return this.readvertise(deviceId, same, by);
  }

  /** Applies what the device advertises (`wanted`, from its current rows) under the policy in force. */
  private async readvertise(
    deviceId: string,
    wanted: (current: readonly RouteRec[]) => { routes: readonly string[]; down: readonly string[] },
    by: Actor,
  ): Promise<boolean> {
    const change = await this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(devices).where(eq(devices.id, deviceId)).for('update');
      if (!row) return undefined;
      const current = await readRoutes(tx, row.id);
      const policy = await currentPolicy(tx, row.accountId);
      const autoApproves = this.autoApprover(policy, toDeviceState(row));
      const { routes, down } = wanted(current);
      const next = advertisedRows(current, routes, down, new Date(), autoApproves);
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
          details: { prefixes, withdrawn, policyVersion: policy.version },
        });
      }
      return this.write(tx, row, next);
    });
    if (!change) return false;
    await this.publish(change);
    return true;
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
    const { row, change } = await this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(devices).where(deviceNamed(accountId, idOrName)).for('update');
      if (!row) throw notFound(`no device "${idOrName}" in account ${accountName}`);
      const current = await readRoutes(tx, row.id);
      const next = approvedRows(current, [...new Set(approved(current))]);
      if (sameRows(current, next)) return { row, change: undefined };
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

  private async write(tx: Tx, row: DeviceRow, next: RouteRec[]): Promise<RoutesChange> {
    await writeRoutes(tx, row, next);
    return { row, next, serial: await bumpSerial(tx, row.accountId) };
  }

  private publish({ row, next, serial }: RoutesChange): Promise<void> {
    const device: DeviceState = toDeviceState(row, stateRoutes(next));
    return this.devices.publishUpserts([{ accountId: row.accountId, serial, device }]);
  }
}
