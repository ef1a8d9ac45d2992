import { API_PATHS, CreateRelayTokenResponse, RelaySetupInfo, RelayTokenInfo } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { useApiGet } from '../use-api-get';
import { relayCommand } from './relay-command';

const TokenList = RelayTokenInfo.array();
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

/** Copies `text`; says so, or that the browser refused (the text stays selectable). */
function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = () =>
    navigator.clipboard.writeText(text).then(
      () => setState('copied'),
      () => setState('failed'),
    );
  return (
    <button type="button" onClick={() => void copy()}>
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select it' : label}
    </button>
  );
}

interface Created {
  response: CreateRelayTokenResponse;
  command: string;
}

/** The account's private-relay tokens: create (shown once, with the command that runs the relay), revoke. */
export function RelayTokensSection({ onChange }: { onChange: () => void }) {
  const [created, setCreated] = useState<Created | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { data: tokens, load } = useApiGet(API_PATHS.relayTokens, TokenList, setError);

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const data = new FormData(form);
    const name = String(data.get('name') ?? '').trim();
    setError(null);
    try {
      const setup = await api('GET', API_PATHS.relaySetup, RelaySetupInfo);
      const response = await api('POST', API_PATHS.relayTokens, CreateRelayTokenResponse, { name });
      const command = relayCommand({
        token: response.token,
        brokerUrl: setup.brokerUrl ?? location.origin,
        fingerprint: setup.fingerprint,
        name,
        publicAddress: String(data.get('publicAddress') ?? ''),
      });
      setCreated({ response, command });
      form.reset();
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (t: RelayTokenInfo) => {
    setError(null);
    setConfirming(null);
    try {
      await api('DELETE', `${API_PATHS.relayTokens}/${t.id}`, RelayTokenInfo);
      if (created?.response.relayToken.id === t.id) setCreated(null);
      await load();
      onChange();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <>
      <h2>Private relay tokens</h2>
      <form className="inline" aria-label="Create a relay token" onSubmit={(e) => void create(e)}>
        <label>
          Name <input name="name" required maxLength={128} placeholder="home-relay" />
        </label>
        <label>
          Relay's public address{' '}
          <input
            name="publicAddress"
            required
            maxLength={64}
            placeholder="203.0.113.7 or relay.example.com"
          />
        </label>
        <button type="submit" className="primary">
          Create token
        </button>
      </form>
      {created && (
        <div className="card" role="status">
          <p>
            Token for <strong>{created.response.relayToken.name}</strong>, shown only this once:
          </p>
          <code className="secret" data-testid="new-relay-token">
            {created.response.token}
          </code>
          <CopyButton text={created.response.token} label="Copy token" />
          <p>Run the relay on its host with (devices must reach it on UDP 40000-40999 and TCP 443):</p>
          <code className="secret" data-testid="relay-command">
            {created.command}
          </code>
          <CopyButton text={created.command} label="Copy command" />
        </div>
      )}
      <ErrorLine error={error} />
      {tokens &&
        (tokens.length === 0 ? (
          <p>No private relay tokens.</p>
        ) : (
          <ListTable columns={['Name', 'Token', 'Created', 'Last used', 'State', '']}>
            {tokens.map((t) => (
              <tr key={t.id} data-relay-token={t.name}>
                <td>{t.name}</td>
                <td>
                  <code>{t.prefix}…</code>
                </td>
                <td>{when(t.createdAt)}</td>
                <td>{when(t.lastUsedAt)}</td>
                <td>{t.revokedAt ? `revoked ${when(t.revokedAt)}` : 'valid'}</td>
                <td>
                  {!t.revokedAt &&
                    (confirming === t.id ? (
                      <span className="confirm">
                        Revoke {t.name}? A relay using it is disconnected at once.{' '}
                        <button type="button" className="danger" onClick={() => void revoke(t)}>
                          Revoke {t.name}
                        </button>
                        <button type="button" onClick={() => setConfirming(null)}>
                          Cancel
                        </button>
                      </span>
                    ) : (
                      <button type="button" onClick={() => setConfirming(t.id)}>
                        Revoke
                      </button>
                    ))}
                </td>
              </tr>
            ))}
          </ListTable>
        ))}
    </>
  );
}
