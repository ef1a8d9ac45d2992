import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';
import { visibleWindow } from '../virtual-window';
import { type DeviceFilter, useDevicePages } from './device-pages';
import { DeviceRow } from './device-row';
import { useGatewayNames } from './use-gateway-names';
import { VirtualDeviceForm } from './virtual-device-form';

/** Every row is this high (styles.css: tr.device-row), the one being edited EDIT_HEIGHT. */
const ROW_HEIGHT = 56;
const EDIT_HEIGHT = 150;
const COLUMNS = ['Name', 'Address', 'User', 'Tags', 'System', 'Status', 'Last seen'];

/** Text typed into the search box is sent once typing pauses. */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/**
 * The account's devices (a member's own), searched and paged by the broker and drawn a screen at a
 * time, so 5,000 devices cost the browser what 50 do; admins may edit or remove one.
 */
export function DevicesPage({ admin }: { admin: boolean }) {
  const [text, setText] = useState('');
  const [status, setStatus] = useState<DeviceFilter['status']>(undefined);
  const q = useDebounced(text, 250);
  const { list, error: loadError, more, upsert } = useDevicePages({ q, status });
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [addingVirtual, setAddingVirtual] = useState(false);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  // The box exists only while there are rows: measured whenever it is (re)attached or resized.
  const observer = useRef<ResizeObserver | null>(null);
  const box = useCallback((el: HTMLDivElement | null) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!el) return;
    const measure = () => setScroll({ top: el.scrollTop, height: el.clientHeight });
    measure();
    observer.current = new ResizeObserver(measure);
    observer.current.observe(el);
  }, []);

  const rows = list?.rows ?? [];
  const names = useGatewayNames(rows);
  const editIndex = rows.findIndex((d) => d.id === editing);
  const win = visibleWindow({
    scrollTop: scroll.top,
    viewportHeight: scroll.height,
    count: rows.length,
    rowHeight: ROW_HEIGHT,
    overscan: 10,
    tall: editIndex >= 0 ? { index: editIndex, height: EDIT_HEIGHT } : null,
  });
  // Near the end of what was fetched: fetch the next page.
  useEffect(() => {
    if (list?.more && win.end >= rows.length - 20) void more();
  }, [list?.more, win.end, rows.length, more]);

  const approve = async (d: DeviceInfo) => {
    try {
      await api('POST', `${API_PATHS.devices}/${d.id}/approval`, DeviceInfo);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const remove = async (d: DeviceInfo) => {
    try {
      await api('DELETE', `${API_PATHS.devices}/${d.id}`, DeviceInfo);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const filtered = (q ?? '') !== '' || status !== undefined;
  const columns = admin ? [...COLUMNS, ''] : COLUMNS;
  return (
    <section>
      <h1>Devices</h1>
      <ErrorLine error={error ?? loadError} />
      {admin && (
        <button type="button" aria-expanded={addingVirtual} onClick={() => setAddingVirtual((on) => !on)}>
          {addingVirtual ? 'Close' : 'Add virtual device'}
        </button>
      )}
      {admin && addingVirtual && <VirtualDeviceForm onAdded={upsert} />}
      <form className="inline" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search{' '}
          <input
            name="search"
            type="search"
            value={text}
            placeholder="name, address, user, tag"
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        <label>
          Status{' '}
          <select
            name="status"
            value={status ?? ''}
            onChange={(e) =>
              setStatus(e.target.value === '' ? undefined : (e.target.value as DeviceFilter['status']))
            }
          >
            <option value="">any</option>
            <option value="online">online</option>
            <option value="offline">offline</option>
            <option value="pending">awaiting approval</option>
          </select>
        </label>
        {list && (
          <span className="sub" data-testid="device-count">
            {list.matched} {list.matched === 1 ? 'device' : 'devices'}
            {filtered ? ' match' : ''}
          </span>
        )}
      </form>
      {list === null ? (
        <p>Loading…</p>
      ) : rows.length === 0 && !filtered ? (
        <p>
          No devices yet. Run <code>trellis up --broker {location.origin}</code> on one.
        </p>
      ) : rows.length === 0 ? (
        <p>No device matches.</p>
      ) : (
        <div
          className="scroll-box"
          ref={box}
          onScroll={(e) =>
            setScroll({ top: e.currentTarget.scrollTop, height: e.currentTarget.clientHeight })
          }
        >
          <table className="list">
            <thead>
              <tr>
                {columns.map((c, i) => (
                  <th key={c || `column-${i}`}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {win.above > 0 && <tr className="spacer" style={{ height: win.above }} />}
              {rows.slice(win.start, win.end).map((d) => (
                <DeviceRow
                  key={d.id}
                  device={d}
                  gatewayNames={names}
                  admin={admin}
                  editing={editing === d.id}
                  columns={columns.length}
                  onEdit={(on) => setEditing(on ? d.id : null)}
                  onRemove={() => void remove(d)}
                  onApprove={() => void approve(d)}
                />
              ))}
              {win.below > 0 && <tr className="spacer" style={{ height: win.below }} />}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
