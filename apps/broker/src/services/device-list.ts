import { type DeviceInfo, type DeviceListPage, type DeviceListQuery, deviceSearchText } from '@trellis/proto';
import { and, count, eq, isNotNull, isNull, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { type DeviceRow, devices } from '../db/schema';

/** `text` as a LIKE pattern that matches it anywhere, its own % _ and \ taken literally. */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The filter of deviceMatches (proto) in SQL; the two are tested to agree. */
function matching(accountId: string, query: DeviceListQuery, ownedBy: string | undefined): SQL {
  const where: SQL[] = [eq(devices.accountId, accountId)];
  if (ownedBy !== undefined) where.push(eq(devices.userEmail, ownedBy));
  if (query.status === 'online') where.push(isNotNull(devices.connectionId));
  if (query.status === 'offline') where.push(isNull(devices.connectionId));
  if (query.status === 'pending') where.push(eq(devices.approved, false));
  const text = deviceSearchText(query.q);
  if (text !== '') {
    const p = containsPattern(text);
    where.push(sql`(lower(${devices.name}) like ${p} or lower(${devices.hostname}) like ${p}
      or ${devices.address} like ${p} or lower(coalesce(${devices.userEmail}, '')) like ${p}
      or exists (select 1 from jsonb_array_elements_text(${devices.tags}) as tag where lower(tag) like ${p}))`);
  }
  return and(...where)!;
}

/**
 * One page of an account's devices (a member's own with `ownedBy`): keyset-paged by name in byte
 * order, so a page costs the same at device 4,900 as at device 1 and nothing shifts when devices come
 * and go between pages.
 */
export async function devicePage(
  db: Db,
  accountId: string,
  query: DeviceListQuery,
  ownedBy: string | undefined,
  toInfo: (row: DeviceRow) => DeviceInfo,
): Promise<DeviceListPage> {
  const filter = matching(accountId, query, ownedBy);
  const byteName = sql`${devices.name} collate "C"`;
  const paged = query.after === undefined ? filter : and(filter, sql`${byteName} > ${query.after}`);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(devices)
      .where(paged)
      .orderBy(byteName)
      .limit(query.limit + 1),
    db.select({ n: count() }).from(devices).where(filter),
  ]);
  const more = rows.length > query.limit;
  const page = more ? rows.slice(0, query.limit) : rows;
  return {
    devices: page.map(toInfo),
    matched: total?.n ?? 0,
    next: more ? page[page.length - 1]!.name : null,
  };
}
