import { API_PATHS, DASHBOARD_EVENTS, DeviceInfo, DeviceRemovedEvent } from '@trellis/proto';
import { useCallback, useEffect, useState } from 'react';
import { z } from 'zod';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { DeviceEditor } from './device-editor';

const DeviceList = z.array(DeviceInfo);

/** The list with `d` put in (or in place of its older self), in name order as the API gives it. */
function upsert(list: DeviceInfo[], d: DeviceInfo): DeviceInfo[] {
  return [...list.filter((x) => x.id !== d.id), d].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

/** The account's devices (a member's own); admins may remove one, after a second click. */
export function DevicesPage({ admin }: { admin: boolean }) {
  const [devices, setDevices] = useState<DeviceInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setDevices(await api('GET', API_PATHS.devices, DeviceList));
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);
  useEffect(() => {
    // Live: each change the broker sends; the whole list again whenever the stream (re)opens, so
    // nothing missed while it was down stays missed.
    const events = new EventSource(API_PATHS.events);
    events.addEventListener('open', () => void load());
    events.addEventListener(DASHBOARD_EVENTS.device, (e) => {
      const d = DeviceInfo.safeParse(JSON.parse((e as MessageEvent<string>).data));
      if (d.success) setDevices((list) => upsert(list ?? [], d.data));
    });
    events.addEventListener(DASHBOARD_EVENTS.removed, (e) => {
      const r = DeviceRemovedEvent.safeParse(JSON.parse((e as MessageEvent<string>).data));
      if (r.success) setDevices((list) => (list ?? []).filter((x) => x.id !== r.data.id));
    });
    return () => events.close();
  }, [load]);

  const remove = async (d: DeviceInfo) => {
    setConfirming(null);
    try {
      await api('DELETE', `${API_PATHS.devices}/${d.id}`, DeviceInfo);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section>
      <h1>Devices</h1>
      <ErrorLine error={error} />
      {devices === null ? (
        <p>Loading…</p>
      ) : devices.length === 0 ? (
        <p>
          No devices yet. Run <code>trellis up --broker {location.origin}</code> on one.
        </p>
      ) : (
        <ListTable
          columns={[
            'Name',
            'Address',
            'User',
            'Tags',
            'System',
            'Status',
            'Last seen',
            ...(admin ? [''] : []),
          ]}
        >
          {devices.map((d) =>
            editing === d.id ? (
              <tr key={d.id} data-editing={d.name}>
                <td colSpan={8}>
                  <DeviceEditor device={d} onDone={() => setEditing(null)} />
                </td>
              </tr>
            ) : (
              <tr key={d.id} data-device={d.name}>
                <td>
                  <strong>{d.name}</strong>
                  <div className="sub">{d.dnsName}</div>
                </td>
                <td>{d.address}</td>
                <td>{d.user ?? '—'}</td>
                <td>{d.tags.join(', ') || '—'}</td>
                <td>{d.os}</td>
                <td className={d.online ? 'online' : 'offline'}>{d.online ? 'online' : 'offline'}</td>
                <td>{d.lastSeen ? new Date(d.lastSeen).toLocaleString() : 'never'}</td>
                {admin && (
                  <td>
                    {confirming === d.id ? (
                      <button type="button" className="danger" onClick={() => void remove(d)}>
                        Remove {d.name} for good
                      </button>
                    ) : (
                      <button type="button" onClick={() => setConfirming(d.id)}>
                        Remove
                      </button>
                    )}
                    <button type="button" onClick={() => setEditing(d.id)}>
                      Edit
                    </button>
                  </td>
                )}
              </tr>
            ),
          )}
        </ListTable>
      )}
    </section>
  );
}
