import { API_PATHS, CreateSetupKeyResponse, SetupKeyInfo } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { z } from 'zod';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { useApiGet } from '../use-api-get';

const SetupKeyList = z.array(SetupKeyInfo);

/** What the form sends: the API's CreateSetupKeyRequest from the fields as typed. */
function requestFrom(form: FormData) {
  const hours = Number(form.get('expiresHours') || 0);
  const limit = Number(form.get('usageLimit') || 0);
  const tags = String(form.get('tags') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return {
    name: String(form.get('name') ?? ''),
    reusable: form.get('reusable') === 'on',
    ...(hours > 0 ? { expiresInSeconds: Math.round(hours * 3600) } : {}),
    ...(limit > 0 ? { usageLimit: limit } : {}),
    ...(tags.length > 0 ? { tags } : {}),
  };
}

/** Setup keys (admins): create with expiry, usage limit and tags; the key is shown once; revoke. */
export function SetupKeysPage() {
  const [created, setCreated] = useState<CreateSetupKeyResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { data: keys, load } = useApiGet(API_PATHS.setupKeys, SetupKeyList, setError);

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    setError(null);
    try {
      setCreated(
        await api('POST', API_PATHS.setupKeys, CreateSetupKeyResponse, requestFrom(new FormData(form))),
      );
      form.reset();
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api('DELETE', `${API_PATHS.setupKeys}/${id}`, SetupKeyInfo);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <section>
      <h1>Setup keys</h1>
      <form className="inline" onSubmit={(e) => void create(e)}>
        <label>
          Name <input name="name" required maxLength={128} />
        </label>
        <label className="check">
          <input name="reusable" type="checkbox" /> Reusable
        </label>
        <label>
          Expires in (hours){' '}
          <input name="expiresHours" type="number" min="0" step="any" placeholder="never" />
        </label>
        <label>
          Usage limit <input name="usageLimit" type="number" min="0" placeholder="none" />
        </label>
        <label>
          Tags <input name="tags" placeholder="server, camera" />
        </label>
        <button type="submit" className="primary">
          Create key
        </button>
      </form>
      {created && (
        <div className="card" role="status">
          <p>
            New key <strong>{created.setupKey.name}</strong>, shown only this once:
          </p>
          <code className="secret" data-testid="new-setup-key">
            {created.key}
          </code>
        </div>
      )}
      <ErrorLine error={error} />
      {keys && (
        <ListTable columns={['Name', 'Key', 'Uses', 'Tags', 'Expires', 'State', '']}>
          {keys.map((k) => (
            <tr key={k.id} data-setup-key={k.name}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>
                {k.usedCount}
                {k.usageLimit !== null ? ` / ${k.usageLimit}` : ''}
                {k.reusable ? ' (reusable)' : ''}
              </td>
              <td>{k.tags.join(', ') || '—'}</td>
              <td>{k.expiresAt ? new Date(k.expiresAt).toLocaleString() : 'never'}</td>
              <td>{k.revokedAt ? 'revoked' : k.valid ? 'valid' : 'used up or expired'}</td>
              <td>
                {!k.revokedAt && (
                  <button type="button" onClick={() => void revoke(k.id)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </ListTable>
      )}
    </section>
  );
}
