import { API_PATHS, DeviceInfo, DeviceListPage } from '@trellis/proto';
import { type FormEvent, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';
import {
  gatewayCandidates,
  gatewayProblem,
  VIRTUAL_DEVICES_PATH,
  virtualDeviceRequest,
} from './virtual-device';

/** Gateways offered per search: the list stays searchable at thousands of devices. */
const GATEWAY_SUGGESTIONS = 50;

/**
 * The devices whose name, address, user or tag contains `text`, fetched once typing pauses. The
 * account may hold thousands, so the gateway is a searched field rather than one long select.
 */
function useGatewaySearch(text: string): DeviceInfo[] {
  const [rows, setRows] = useState<DeviceInfo[]>([]);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      const params = new URLSearchParams({ limit: String(GATEWAY_SUGGESTIONS) });
      if (text.trim()) params.set('q', text.trim());
      api('GET', `${API_PATHS.deviceList}?${params}`, DeviceListPage)
        .then((page) => {
          if (live) setRows(page.devices);
        })
        // Suggestions only: the broker still judges the gateway when the form is sent.
        .catch(() => undefined);
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [text]);
  return rows;
}

/**
 * Registers a LAN host (printer, camera) behind a gateway device (admins). Checked by the proto
 * schema before it is sent; the broker's refusal (unknown gateway, a name or LAN address taken) is
 * shown as it words it.
 */
export function VirtualDeviceForm({ onAdded }: { onAdded: (d: DeviceInfo) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [added, setAdded] = useState<DeviceInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const [gateway, setGateway] = useState('');
  const found = useGatewaySearch(gateway);
  const candidates = gatewayCandidates(found);

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const data = new FormData(form);
    setAdded(null);
    const checked = virtualDeviceRequest({
      name: String(data.get('name') ?? ''),
      lanAddress: String(data.get('lanAddress') ?? ''),
      gateway,
      tags: String(data.get('tags') ?? ''),
    });
    const problem = 'error' in checked ? checked.error : gatewayProblem(found, gateway);
    if (problem !== null || 'error' in checked) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const device = await api('POST', VIRTUAL_DEVICES_PATH, DeviceInfo, checked.request);
      form.reset();
      setGateway('');
      setAdded(device);
      onAdded(device);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="card virtual-form">
      <form className="inline" aria-label="Add a virtual device" noValidate onSubmit={(e) => void submit(e)}>
        <label>
          Name <input name="name" required maxLength={63} placeholder="printer" autoComplete="off" />
        </label>
        <label>
          LAN address{' '}
          <input name="lanAddress" required maxLength={15} placeholder="192.168.1.100" autoComplete="off" />
        </label>
        <label>
          Gateway{' '}
          <input
            name="gateway"
            list="virtual-gateways"
            required
            value={gateway}
            placeholder="a device on that LAN"
            autoComplete="off"
            onChange={(e) => setGateway(e.target.value)}
          />
          <datalist id="virtual-gateways">
            {candidates.map((d) => (
              <option key={d.id} value={d.name}>
                {d.address}
              </option>
            ))}
          </datalist>
        </label>
        <label>
          Tags <input name="tags" placeholder="tag:printer (optional)" autoComplete="off" />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          Add virtual device
        </button>
      </form>
      <ErrorLine error={error} />
      {added && (
        <p className="done" role="status">
          Added {added.name}: {added.address} ({added.dnsName}), reached via its gateway.
        </p>
      )}
    </div>
  );
}
