import { API_PATHS, EXIT_ROUTE, RouteList, type RouteRow } from '@trellis/proto';
import { useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { useAction } from '../use-action';
import { useApiGet } from '../use-api-get';

/** What a route's state cell says, most telling first. */
function stateOf(r: RouteRow): string {
  if (!r.approved) return 'pending approval';
  if (!r.advertised) return 'approved, not advertised';
  if (r.down) return 'down';
  if (!r.online) return 'offline';
  return r.primary ? 'primary' : 'standby';
}

/**
 * Subnet routes and exit nodes: what each gateway advertises and whether it is approved (admins
 * approve and unapprove here; members see their own devices' routes). Clients use the primary of
 * each prefix: the online, approved gateway that has served it longest.
 */
export function RoutesPage({ admin }: { admin: boolean }) {
  const [error, setError] = useState<string | null>(null);
  const { data, load } = useApiGet(API_PATHS.routes, RouteList, setError);
  const { busy, run } = useAction(setError);
  const rows = data?.routes ?? null;

  // The device's whole approved set, with `prefix` in or out: the API replaces it.
  const setApproved = (r: RouteRow, approve: boolean) =>
    run(async () => {
      const others = (rows ?? []).filter(
        (o) => o.deviceId === r.deviceId && o.approved && o.prefix !== r.prefix,
      );
      const approved = [...others.map((o) => o.prefix), ...(approve ? [r.prefix] : [])];
      await api('PUT', `${API_PATHS.devices}/${r.deviceId}/routes`, RouteList, { approved });
      await load();
    });

  return (
    <section>
      <h1>Routes</h1>
      <p className="sub">
        Gateways forward mesh traffic to their LAN (subnet routes) or to the internet (exit nodes) once their
        route is approved by an admin or by the policy's autoApprovers.{' '}
        <button type="button" onClick={() => void load()}>
          Refresh
        </button>
      </p>
      <ErrorLine error={error} />
      {rows &&
        (rows.length === 0 ? (
          <p>No device advertises a route.</p>
        ) : (
          <ListTable columns={['Route', 'Gateway', 'Approval', 'State', 'Since', ...(admin ? [''] : [])]}>
            {rows.map((r) => (
              <tr key={`${r.deviceId} ${r.prefix}`} data-route={`${r.deviceName} ${r.prefix}`}>
                <td>
                  <code>{r.prefix}</code>
                  {r.prefix === EXIT_ROUTE && <em> exit node</em>}
                </td>
                <td>{r.deviceName}</td>
                <td data-testid="approval" className={r.approved ? undefined : 'pending'}>
                  {r.approved ? (r.autoApproved ? 'auto-approved' : 'approved') : 'pending'}
                </td>
                <td data-testid="state" className={r.primary ? 'online' : undefined}>
                  {stateOf(r)}
                </td>
                <td>{r.since ? new Date(r.since).toLocaleString() : '—'}</td>
                {admin && (
                  <td>
                    <button type="button" disabled={busy} onClick={() => void setApproved(r, !r.approved)}>
                      {r.approved ? 'Unapprove' : 'Approve'}
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </ListTable>
        ))}
    </section>
  );
}
