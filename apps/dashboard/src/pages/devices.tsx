import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { useEffect, useState } from 'react';
import { z } from 'zod';
import { api } from '../api';

const DeviceList = z.array(DeviceInfo);
/** How often the list is read again (the live view over events is not built yet). */
const REFRESH_MS = 5_000;

export function DevicesPage() {
  const [devices, setDevices] = useState<DeviceInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const list = await api('GET', API_PATHS.devices, DeviceList);
        if (stopped) return;
        setDevices(list);
        setError(null);
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  return (
    <section>
      <h1>Devices</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {devices === null ? (
        <p>Loading…</p>
      ) : devices.length === 0 ? (
        <p>
          No devices yet. Run <code>trellis up --broker {location.origin}</code> on one.
        </p>
      ) : (
        <table className="devices">
          <thead>
            <tr>
              <th>Name</th>
              <th>Address</th>
              <th>User</th>
              <th>Tags</th>
              <th>System</th>
              <th>Status</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
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
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
