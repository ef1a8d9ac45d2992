import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';
import { isVirtualDevice, tagList } from './virtual-device';

/**
 * A device's name and tags, edited in its row (admins). Only what changed is sent; the row itself
 * follows from the broker's event for the change. A virtual device has no key to replace.
 */
export function DeviceEditor({ device, onDone }: { device: DeviceInfo; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const name = String(form.get('name') ?? '').trim();
    const tags = tagList(String(form.get('tags') ?? ''));
    const publicKey = String(form.get('publicKey') ?? '').trim();
    setBusy(true);
    setError(null);
    try {
      const path = `${API_PATHS.devices}/${device.id}`;
      if (name !== device.name) await api('PUT', `${path}/name`, DeviceInfo, { name });
      if (tags.join(',') !== device.tags.join(',')) await api('PUT', `${path}/tags`, DeviceInfo, { tags });
      if (publicKey !== '') await api('PUT', `${path}/key`, DeviceInfo, { publicKey });
      onDone();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline" onSubmit={(e) => void save(e)}>
      <label>
        Name <input name="name" defaultValue={device.name} required maxLength={63} />
      </label>
      <label>
        Tags <input name="tags" defaultValue={device.tags.join(', ')} placeholder="tag:server" />
      </label>
      {!isVirtualDevice(device) && (
        <label title="Only for a device that lost its key: the public key its new install shows (trellis status). Its peers are told the key changed.">
          New key{' '}
          <input name="publicKey" placeholder="re-key: the key it shows now" size={46} maxLength={44} />
        </label>
      )}
      <button type="submit" className="primary" disabled={busy}>
        Save
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
      <ErrorLine error={error} />
    </form>
  );
}
