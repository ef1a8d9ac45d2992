import { API_PATHS, RelayStatusInfo } from '@trellis/proto';
import { useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { RelayTokensSection } from './relay-tokens';

const RelayList = RelayStatusInfo.array();

/**
 * Relays (owners and admins): those the account's devices may use (the operator's shared ones and
 * the account's private ones) and, below, the account's private-relay tokens.
 */
export function RelaysPage() {
  const [relays, setRelays] = useState<RelayStatusInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setRelays(await api('GET', API_PATHS.relays, RelayList));
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section>
      <h1>Relays</h1>
      <p className="sub">
        Devices that cannot reach each other directly talk through a relay. Once the account has a private
        relay its devices use only private ones.{' '}
        <button type="button" onClick={() => void load()}>
          Refresh
        </button>
      </p>
      <ErrorLine error={error} />
      {relays &&
        (relays.length === 0 ? (
          <p>No relay serves this account yet.</p>
        ) : (
          <ListTable columns={['Name', 'Address', 'Kind', 'State', 'Load', 'Last seen']}>
            {relays.map((r) => (
              <tr key={r.id} data-relay={r.name}>
                <td>{r.name}</td>
                <td>
                  <code>{r.publicAddress}</code>
                </td>
                <td>{r.accountName === null ? 'shared (operator)' : 'private'}</td>
                <td className={r.online ? 'online' : 'offline'}>{r.online ? 'online' : 'offline'}</td>
                <td>
                  {r.allocations} {r.allocations === 1 ? 'pair' : 'pairs'}
                </td>
                <td>{r.lastSeenAt ? new Date(r.lastSeenAt).toLocaleString() : '—'}</td>
              </tr>
            ))}
          </ListTable>
        ))}
      <RelayTokensSection onChange={() => void load()} />
    </section>
  );
}
