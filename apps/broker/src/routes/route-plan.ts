import type { DeviceState } from '@trellis/proto';

/** One device_routes row as the plans see it (no ids: a device's rows are keyed by prefix). */
export interface RouteRec {
  prefix: string;
  advertised: boolean;
  approved: boolean;
  autoApproved: boolean;
  down: boolean;
  advertisedAt: Date | null;
}

const byPrefix = (a: RouteRec, b: RouteRec) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0);

/**
 * The rows after the device advertised `routes` (`down` among them unreachable now). Withdrawn
 * rows stay only when an admin approved them; a prefix keeps its first advertisement time while
 * it stays advertised. Auto-approval follows the policy in force at each advertisement.
 */
export function advertisedRows(
  current: readonly RouteRec[],
  routes: readonly string[],
  down: readonly string[],
  now: Date,
  autoApproves: (prefix: string) => boolean,
): RouteRec[] {
  const wanted = new Set(routes);
  const isDown = new Set(down);
  const next: RouteRec[] = [];
  for (const row of current) {
    if (wanted.has(row.prefix)) continue;
    if (row.approved && !row.autoApproved) {
      next.push({ ...row, advertised: false, down: false, advertisedAt: null });
    }
  }
  for (const prefix of wanted) {
    const row = current.find((r) => r.prefix === prefix);
    const auto = autoApproves(prefix);
    const byAdmin = row?.approved === true && !row.autoApproved;
    next.push({
      prefix,
      advertised: true,
      approved: byAdmin || auto,
      autoApproved: !byAdmin && auto,
      down: isDown.has(prefix),
      advertisedAt: row?.advertised && row.advertisedAt ? row.advertisedAt : now,
    });
  }
  return next.sort(byPrefix);
}

/**
 * The rows after an admin set the approved prefixes to `approved`. One approved already keeps how
 * (an admin's list includes what the policy approved); one approved before it is advertised waits
 * for it; an unapproved row that is not advertised is dropped.
 */
export function approvedRows(current: readonly RouteRec[], approved: readonly string[]): RouteRec[] {
  const wanted = new Set(approved);
  const next: RouteRec[] = [];
  for (const row of current) {
    if (wanted.has(row.prefix)) {
      next.push(row.approved ? row : { ...row, approved: true, autoApproved: false });
    } else if (row.advertised) {
      next.push({ ...row, approved: false, autoApproved: false });
    }
  }
  for (const prefix of wanted) {
    if (current.some((r) => r.prefix === prefix)) continue;
    next.push({
      prefix,
      advertised: false,
      approved: true,
      autoApproved: false,
      down: false,
      advertisedAt: null,
    });
  }
  return next.sort(byPrefix);
}

/** Whether two row sets (sorted by prefix) are the same. */
export function sameRows(a: readonly RouteRec[], b: readonly RouteRec[]): boolean {
  const key = (rows: readonly RouteRec[]) =>
    JSON.stringify(
      [...rows]
        .sort(byPrefix)
        .map((r) => [
          r.prefix,
          r.advertised,
          r.approved,
          r.autoApproved,
          r.down,
          r.advertisedAt?.getTime() ?? null,
        ]),
    );
  return key(a) === key(b);
}

/** DeviceState.routes: the advertised rows (absent when none). */
export function stateRoutes(rows: readonly RouteRec[]): DeviceState['routes'] {
  const out = [...rows]
    .filter((r) => r.advertised)
    .sort(byPrefix)
    .map((r) => ({
      prefix: r.prefix,
      approved: r.approved,
      since: r.advertisedAt?.getTime() ?? 0,
      ...(r.down ? { down: true as const } : {}),
    }));
  return out.length > 0 ? out : undefined;
}

/** The approved prefixes of a row set, sorted (the audit log's before and after). */
export function approvedPrefixes(rows: readonly RouteRec[]): string[] {
  return rows
    .filter((r) => r.approved)
    .map((r) => r.prefix)
    .sort();
}
