import { AccountSettings, API_PATHS } from '@trellis/proto';
import { useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';
import { useAction } from '../use-action';

/** The account's settings (admins): whether a device a member signs in waits for an admin's approval. */
export function SettingsPage() {
  const [settings, setSettings] = useState<AccountSettings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { busy, run } = useAction(setError);
  useEffect(() => {
    api('GET', API_PATHS.accountSettings, AccountSettings).then(setSettings, (err: Error) =>
      setError(err.message),
    );
  }, []);

  const change = (requireDeviceApproval: boolean) =>
    run(async () =>
      setSettings(await api('PATCH', API_PATHS.accountSettings, AccountSettings, { requireDeviceApproval })),
    );

  if (!settings) return <section>{error ? <ErrorLine error={error} /> : <p>Loading…</p>}</section>;
  return (
    <section>
      <h1>Settings</h1>
      <label className="check switch">
        <input
          type="checkbox"
          name="requireDeviceApproval"
          checked={settings.requireDeviceApproval}
          disabled={busy}
          onChange={(e) => void change(e.target.checked)}
        />{' '}
        New devices need an admin's approval
      </label>
      <p className="sub">
        When on, a device a member signs in is enrolled but stays out of the mesh (in no netmap, no DNS name,
        its connections refused) until an owner or admin approves it on the Devices page; its agent keeps
        trying and joins by itself once approved. Devices an admin approves at sign-in, and devices enrolled
        with a setup key (only admins make them), need nothing more. Devices already in the mesh stay in it.
      </p>
      <ErrorLine error={error} />
    </section>
  );
}
