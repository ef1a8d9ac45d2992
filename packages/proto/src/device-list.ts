import { z } from 'zod';
import { DeviceInfo } from './api';
import { DnsLabel, PlainText } from './common';

/** The most devices one page of the device list holds. */
export const MAX_DEVICE_PAGE = 500;

/**
 * One page of the device list (API_PATHS.deviceList), as query parameters: the devices whose name
 * sorts after `after` (byte order), that match `q` and `status`. The dashboard asks page by page so
 * that an account of thousands of devices is never sent, parsed or drawn at once.
 */
export const DeviceListQuery = z.strictObject({
  /** Part of the name, hostname, address, user's email or a tag (any case). */
  q: PlainText(64).optional(),
  /** `pending`: waiting for an admin's approval. */
  status: z.enum(['online', 'offline', 'pending']).optional(),
  /** The last name of the previous page. */
  after: DnsLabel.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_DEVICE_PAGE).default(100),
});
export type DeviceListQuery = z.infer<typeof DeviceListQuery>;

export const DeviceListPage = z.object({
  devices: z.array(DeviceInfo),
  /** How many devices match the filter, on every page. */
  matched: z.number().int().nonnegative(),
  /** The `after` of the next page; null: this is the last. */
  next: DnsLabel.nullable(),
});
export type DeviceListPage = z.infer<typeof DeviceListPage>;

/** The search text as both sides compare it; empty: no text filter. */
export function deviceSearchText(q: string | undefined): string {
  return (q ?? '').trim().toLowerCase();
}

/**
 * Whether a device belongs in the list this query asks for, apart from paging: the broker filters in
 * SQL and the dashboard with this, for devices that change while the list is open (tested to agree).
 */
export function deviceMatches(query: Pick<DeviceListQuery, 'q' | 'status'>, d: DeviceInfo): boolean {
  if (query.status === 'pending' && d.approved) return false;
  if ((query.status === 'online' || query.status === 'offline') && d.online !== (query.status === 'online'))
    return false;
  const text = deviceSearchText(query.q);
  if (text === '') return true;
  return [d.name, d.hostname, d.address, d.user ?? '', ...d.tags].some((field) =>
    field.toLowerCase().includes(text),
  );
}

/** Byte order of names, as the broker sorts them (SQL collation "C"). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
