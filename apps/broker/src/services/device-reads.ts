import type { DeviceInfo, DeviceListPage, DeviceListQuery } from '@trellis/proto';
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/database';
import { accounts, type DeviceRow, devices } from '../db/schema';
import { notFound } from '../domain/errors';
import type { DeviceState } from '../domain/netmap-builder';
import { currentPolicy } from '../policy/policy-store';
import { stateRoutesOf } from '../routes/route-store';
import { deviceNamed } from './device-edits';
import { devicePage } from './device-list';
import { toDeviceState } from './device-state';

/** An account as a hub loads it: devices and policy at one serial. */
export interface LoadedAccount {
  serial: number;
  devices: DeviceState[];
  policy: { version: number; text: string };
}

/** Devices as the API shows them (DeviceInfo) and as a hub loads them: the read side of DevicesService. */
export class DeviceReads {
  constructor(
    protected readonly db: Db,
    private readonly zone: string,
  ) {}

  dnsName(name: string, accountName: string): string {
    return `${name}.${accountName}.${this.zone}`;
  }

  /** The account's devices; with `ownedBy`, only that user's (what a member sees). */
  async list(accountId: string, accountName: string, ownedBy?: string): Promise<DeviceInfo[]> {
    const inAccount = eq(devices.accountId, accountId);
    const rows = await this.db
      .select()
      .from(devices)
      .where(ownedBy === undefined ? inAccount : and(inAccount, eq(devices.userEmail, ownedBy)))
      .orderBy(devices.name);
    return rows.map((r) => this.toInfo(r, accountName));
  }

  /** One page of the device list (see devicePage); with `ownedBy`, only that user's devices. */
  page(
    accountId: string,
    accountName: string,
    query: DeviceListQuery,
    ownedBy?: string,
  ): Promise<DeviceListPage> {
    return devicePage(this.db, accountId, query, ownedBy, (row) => this.toInfo(row, accountName));
  }

  /** One device by id or name; with `ownedBy`, only if it is that user's (else not found). */
  async one(accountId: string, accountName: string, idOrName: string, ownedBy?: string): Promise<DeviceInfo> {
    const named = deviceNamed(accountId, idOrName);
    const where = ownedBy === undefined ? named : and(named, eq(devices.userEmail, ownedBy));
    const [row] = await this.db.select().from(devices).where(where);
    if (!row) throw notFound(`device ${idOrName} not found`);
    return this.toInfo(row, accountName);
  }

  /** These devices of the account as the API shows them (those that still exist). */
  async infoOf(accountId: string, ids: readonly string[]): Promise<DeviceInfo[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .select({ device: devices, accountName: accounts.name })
      .from(devices)
      .innerJoin(accounts, eq(devices.accountId, accounts.id))
      .where(and(eq(devices.accountId, accountId), inArray(devices.id, [...ids])));
    return rows.map((r) => this.toInfo(r.device, r.accountName));
  }

  toInfo(row: DeviceRow, accountName: string): DeviceInfo {
    return {
      id: row.id,
      name: row.name,
      dnsName: this.dnsName(row.name, accountName),
      hostname: row.hostname,
      os: row.os,
      publicKey: row.publicKey,
      address: row.address,
      via: row.viaDeviceId,
      lanAddress: row.lanAddress,
      endpoints: row.endpoints,
      online: row.connectionId !== null,
      lastSeen: row.lastSeen?.toISOString() ?? null,
      createdAt: row.createdAt.toISOString(),
      tags: row.tags,
      user: row.userEmail,
      approved: row.approved,
    };
  }

  /** The netmap serial of each of these accounts (absent: the account is gone). */
  async accountSerials(accountIds: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.db
      .select({ id: accounts.id, serial: accounts.netmapSerial })
      .from(accounts)
      .where(inArray(accounts.id, [...accountIds]));
    return new Map(rows.map((r) => [r.id, r.serial]));
  }

  /** Every device of an account, its policy, and the serial that state corresponds to, read consistently. */
  async loadAccount(accountId: string): Promise<LoadedAccount> {
    return this.db.transaction(
      async (tx) => {
        const [account] = await tx
          .select({ serial: accounts.netmapSerial })
          .from(accounts)
          .where(eq(accounts.id, accountId));
        // Devices waiting for approval are in no netmap.
        const rows = await tx
          .select()
          .from(devices)
          .where(and(eq(devices.accountId, accountId), eq(devices.approved, true)));
        const policy = await currentPolicy(tx, accountId);
        const routes = await stateRoutesOf(
          tx,
          rows.map((r) => r.id),
        );
        return {
          serial: account?.serial ?? 0,
          devices: rows.map((r) => toDeviceState(r, routes.get(r.id))),
          policy: { version: policy.version, text: policy.text },
        };
      },
      { isolationLevel: 'repeatable read' },
    );
  }

  /** The account's policy in force (version 0: the default). */
  async loadPolicy(accountId: string): Promise<{ version: number; text: string }> {
    const policy = await currentPolicy(this.db, accountId);
    return { version: policy.version, text: policy.text };
  }
}
