import { API_PATHS, DeviceListPage, DnsSettings } from '@trellis/proto';
import { useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { useAction } from '../use-action';

/** Names listed here; the devices page searches the rest. */
const NAMES_SHOWN = 100;

/**
 * The account's DNS: where its names live, the names themselves (a member's own devices), and the
 * switch between public and mesh-only answers (admins).
 */
export function DnsPage({ admin }: { admin: boolean }) {
  const [settings, setSettings] = useState<DnsSettings | null>(null);
  const [devices, setDevices] = useState<DeviceListPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { busy, run } = useAction(setError);
  const load = useCallback(async () => {
    try {
      const [s, d] = await Promise.all([
        api('GET', API_PATHS.dns, DnsSettings),
        api('GET', `${API_PATHS.deviceList}?limit=${NAMES_SHOWN}`, DeviceListPage),
      ]);
      setSettings(s);
      setDevices(d);
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const flip = (meshOnly: boolean) =>
    run(async () => setSettings(await api('PUT', API_PATHS.dns, DnsSettings, { meshOnly })));

  if (!settings) return <section>{error ? <ErrorLine error={error} /> : <p>Loading…</p>}</section>;
  return (
    <section>
      <h1>DNS</h1>
      <dl className="card">
        <dt>Zone</dt>
        <dd>
          <code>{settings.zone}</code>: the broker answers for it with authority (no recursion). Each agent
          also answers it from its netmap, so names work while the broker is down.
        </dd>
        <dt>This account's names</dt>
        <dd>
          <code>&lt;device&gt;.{settings.accountZone}</code>: a device's name follows it when it is renamed.
        </dd>
        <dt>Answered to</dt>
        <dd data-testid="dns-mode">
          {settings.meshOnly ? (
            <>
              <strong>Mesh only</strong>: the broker answers these names only to queries from addresses of the
              account's own devices and refuses everyone else, so the names and mesh addresses stay private.
            </>
          ) : (
            <>
              <strong>Public</strong>: anyone who can ask the broker gets an answer. The addresses are only
              reachable over the mesh, but the names and addresses can be seen.
            </>
          )}
        </dd>
      </dl>
      {admin && (
        <label className="check switch">
          <input
            type="checkbox"
            checked={settings.meshOnly}
            disabled={busy}
            onChange={(e) => void flip(e.target.checked)}
          />{' '}
          Mesh only (takes effect at once on every broker instance)
        </label>
      )}
      <ErrorLine error={error} />
      <h2>Names</h2>
      {devices && devices.matched === 0 ? (
        <p>No devices yet, so no names.</p>
      ) : (
        <ListTable columns={['Name', 'Address']}>
          {/* A device waiting for approval has no name yet. */}
          {(devices?.devices ?? [])
            .filter((d) => d.approved)
            .map((d) => (
              <tr key={d.id} data-name={d.dnsName}>
                <td>
                  <code>{d.dnsName}</code>
                </td>
                <td>{d.address}</td>
              </tr>
            ))}
        </ListTable>
      )}
      {devices?.next && (
        <p className="sub">
          The first {NAMES_SHOWN} of {devices.matched} devices; search the Devices page for the others.
        </p>
      )}
    </section>
  );
}
