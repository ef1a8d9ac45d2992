import { randomBytes, randomInt } from 'node:crypto';
import {
  type DeviceAuthInfo,
  type DeviceTokenError,
  formatUserCode,
  OVERLAY_PREFIX,
  USER_CODE_ALPHABET,
  USER_CODE_LENGTH,
} from '@trellis/proto';
import { and, eq, gt, lt } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { accounts, type DeviceAuthorizationRow, deviceAuthorizations, devices } from '../db/schema';
import { DomainError, notFound } from '../domain/errors';
import { hashSecret } from '../security/tokens';
import { type DeviceFields, type Enrolled, enrollGranted } from './device-enrollment';
import type { DevicesService, EnrollResult } from './devices.service';
import { type Tx, withUniqueRetry } from './tx';
import type { UserContext } from './users.service';

/** How long a pair of codes is good for (RFC 8628 leaves it to the server; 10 minutes, as is usual). */
export const DEVICE_AUTH_TTL_SECONDS = 600;
/** Seconds between polls, and what `slow_down` adds to it (RFC 8628 §3.5). */
export const DEVICE_AUTH_INTERVAL_SECONDS = 5;
const SLOW_DOWN_STEP_SECONDS = 5;
/** A poll up to this share of the interval early still counts as on time: timers are not exact. */
const POLL_SLACK = 0.2;

export interface DeviceAuthStarted {
  deviceCode: string;
  /** XXXX-XXXX. */
  userCode: string;
  expiresIn: number;
  interval: number;
}

/** What the poll that finds its request approved gets: the enrollment, once. */
export interface DeviceAuthGranted {
  enrolled: Omit<EnrollResult, 'reenrolled'>;
}

const pollError = (error: DeviceTokenError, message: string) =>
  new DomainError(400, error, message, error === 'authorization_pending' ? 'debug' : 'warn');

export const newDeviceCode = () => `tdev_${randomBytes(32).toString('base64url')}`;

export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/**
 * Sign in once (RFC 8628): a device asks for a code pair, a signed-in user approves or denies the
 * request by its user code, and the device's next poll gets its enrollment, exactly once. Approval
 * enrolls the device at once, in the approver's account and as the approver's device.
 */
export class DeviceAuthorizationsService {
  constructor(
    private readonly db: Db,
    private readonly devices: DevicesService,
    private readonly config: { intervalSeconds: number } = { intervalSeconds: DEVICE_AUTH_INTERVAL_SECONDS },
    private readonly now: () => number = Date.now,
  ) {}

  async start(device: DeviceFields, requestedFrom: string): Promise<DeviceAuthStarted> {
    const now = this.now();
    await this.db.delete(deviceAuthorizations).where(lt(deviceAuthorizations.expiresAt, new Date(now)));
    const deviceCode = newDeviceCode();
    // The user code space is large (20^8) but a clash with a live code is possible: draw again.
    const userCode = await withUniqueRetry(5, async () => {
      const code = newUserCode();
      await this.db.insert(deviceAuthorizations).values({
        deviceCodeHash: hashSecret(deviceCode),
        userCodeHash: hashSecret(code),
        publicKey: device.publicKey,
        name: device.name ?? null,
        hostname: device.hostname,
        os: device.os,
        endpoints: device.endpoints,
        proven: device.proven,
        requestedFrom,
        intervalSeconds: this.config.intervalSeconds,
        expiresAt: new Date(now + DEVICE_AUTH_TTL_SECONDS * 1000),
      });
      return code;
    });
    return {
      deviceCode,
      userCode: formatUserCode(userCode),
      expiresIn: DEVICE_AUTH_TTL_SECONDS,
      interval: this.config.intervalSeconds,
    };
  }

  /** The device's poll: its enrollment once approved, else the RFC's error saying what to do next. */
  async poll(deviceCode: string): Promise<DeviceAuthGranted> {
    const outcome = await this.db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(deviceAuthorizations)
        .where(eq(deviceAuthorizations.deviceCodeHash, hashSecret(deviceCode)))
        .for('update');
      const now = this.now();
      if (!row || row.expiresAt.getTime() <= now)
        return pollError('expired_token', 'the code has expired: start again');
      if (row.state === 'spent') return pollError('expired_token', 'the code was used already: start again');
      const since = row.lastPolledAt ? now - row.lastPolledAt.getTime() : Number.POSITIVE_INFINITY;
      if (since < row.intervalSeconds * 1000 * (1 - POLL_SLACK)) {
        const intervalSeconds = row.intervalSeconds + SLOW_DOWN_STEP_SECONDS;
        await tx
          .update(deviceAuthorizations)
          .set({ intervalSeconds, lastPolledAt: new Date(now) })
          .where(eq(deviceAuthorizations.id, row.id));
        return pollError('slow_down', `polled too often: wait ${intervalSeconds} s between polls`);
      }
      const spent = row.state === 'approved';
      await tx
        .update(deviceAuthorizations)
        .set({ lastPolledAt: new Date(now), ...(spent ? { state: 'spent' as const } : {}) })
        .where(eq(deviceAuthorizations.id, row.id));
      if (row.state === 'denied') return pollError('access_denied', 'the request was denied');
      if (!spent) return pollError('authorization_pending', 'waiting for the user to approve');
      // Read in the same transaction: the code is spent only if its enrollment is handed out.
      return (
        (await this.enrolledFor(tx, row)) ??
        pollError('expired_token', 'the approved device was removed meanwhile: start again')
      );
    });
    if (outcome instanceof DomainError) throw outcome;
    return { enrolled: outcome };
  }

  private async enrolledFor(
    tx: Tx,
    row: DeviceAuthorizationRow,
  ): Promise<DeviceAuthGranted['enrolled'] | undefined> {
    const [found] = row.deviceId
      ? await tx
          .select({ device: devices, account: accounts })
          .from(devices)
          .innerJoin(accounts, eq(devices.accountId, accounts.id))
          .where(eq(devices.id, row.deviceId))
      : [];
    if (!found) return undefined;
    const { device, account } = found;
    return {
      deviceId: device.id,
      accountId: account.id,
      accountName: account.name,
      name: device.name,
      dnsName: this.devices.dnsName(device.name, account.name),
      address: device.address,
      overlayPrefix: OVERLAY_PREFIX,
      approved: device.approved,
    };
  }

  /** A pending request by its user code, for the user to check before deciding. */
  async describe(userCode: string): Promise<DeviceAuthInfo> {
    const [row] = await this.db
      .select()
      .from(deviceAuthorizations)
      .where(pendingWithCode(userCode, this.now()));
    if (!row) throw noSuchRequest();
    return {
      userCode: formatUserCode(userCode),
      name: row.name,
      hostname: row.hostname,
      os: row.os,
      publicKey: row.publicKey,
      requestedFrom: row.requestedFrom,
      createdAt: row.createdAt.toISOString(),
      expiresAt: row.expiresAt.toISOString(),
    };
  }

  /**
   * Denies the request, or approves it: the device is enrolled in the user's account, as theirs.
   * Either is recorded in the audit log of the user's account, `by` the user (from their address).
   */
  async decide(
    user: UserContext,
    userCode: string,
    approve: boolean,
    by: Actor = { kind: 'user', userId: user.userId, email: user.email, address: null },
  ): Promise<EnrollResult | null> {
    if (!approve) {
      await this.db.transaction(async (tx) => {
        const [denied] = await tx
          .update(deviceAuthorizations)
          .set({ state: 'denied', decidedBy: user.userId })
          .where(pendingWithCode(userCode, this.now()))
          .returning();
        if (!denied) throw noSuchRequest();
        await recordAudit(tx, by, {
          action: 'device-authorization.denied',
          accountId: user.accountId,
          target: { kind: 'device-authorization', id: denied.id, name: denied.name ?? denied.hostname },
          details: { hostname: denied.hostname, os: denied.os, requestedFrom: denied.requestedFrom },
        });
      });
      return null;
    }
    return this.devices.enrollIn(async (tx: Tx, addresses) => {
      const [row] = await tx
        .select()
        .from(deviceAuthorizations)
        .where(pendingWithCode(userCode, this.now()))
        .for('update');
      if (!row) throw noSuchRequest();
      const [account] = await tx.select().from(accounts).where(eq(accounts.id, user.accountId));
      if (!account) throw notFound('your account no longer exists');
      const enrolled = await enrollGranted(
        tx,
        {
          publicKey: row.publicKey,
          ...(row.name !== null ? { name: row.name } : {}),
          hostname: row.hostname,
          os: row.os,
          endpoints: row.endpoints,
          proven: row.proven,
        },
        // A member's device waits for an admin where the account asks for that; an admin's approval is one.
        {
          account,
          tags: [],
          cidr: null,
          ownerId: user.userId,
          approved: !(account.requireDeviceApproval && user.role === 'member'),
        },
        addresses,
      );
      // The device has until then to collect it, however late in the codes' life the approval came.
      const collectBy = new Date(this.now() + DEVICE_AUTH_TTL_SECONDS * 1000);
      await tx
        .update(deviceAuthorizations)
        .set({ state: 'approved', deviceId: enrolled.row.id, decidedBy: user.userId, expiresAt: collectBy })
        .where(eq(deviceAuthorizations.id, row.id));
      await recordApproval(tx, by, user, row, enrolled);
      return enrolled;
    });
  }
}

/** An approval is two events: the request's decision, and the device's enrollment it made. */
async function recordApproval(
  tx: Tx,
  by: Actor,
  user: UserContext,
  request: DeviceAuthorizationRow,
  { row, reenrolled }: Enrolled,
): Promise<void> {
  const target = { kind: 'device-authorization' as const, id: request.id, name: row.name };
  await recordAudit(tx, by, {
    action: 'device-authorization.approved',
    accountId: user.accountId,
    target,
    details: { deviceId: row.id, hostname: request.hostname, os: request.os },
  });
  await recordAudit(tx, by, {
    action: 'device.enrolled',
    accountId: user.accountId,
    target: { kind: 'device', id: row.id, name: row.name },
    details: { via: 'sign-in', approvedBy: user.email, address: row.address, reenrolled },
  });
}

const noSuchRequest = () =>
  notFound('no pending request has this code (it may have expired or been decided)');

function pendingWithCode(userCode: string, now: number) {
  return and(
    eq(deviceAuthorizations.userCodeHash, hashSecret(userCode)),
    eq(deviceAuthorizations.state, 'pending'),
    gt(deviceAuthorizations.expiresAt, new Date(now)),
  );
}
