import { API_PATHS, type AuditEventInfo, AuditPage } from '@trellis/proto';
import { useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';

const PAGE_SIZE = 50;
/** Waits this long after the last key before asking the broker (one request per pause, not per key). */
const TYPING_PAUSE_MS = 300;

/** The kinds of change the filter offers: action prefixes. */
const KINDS: ReadonlyArray<[string, string]> = [
  ['', 'every change'],
  ['device.', 'devices'],
  ['device-authorization.', 'device sign-ins'],
  ['setup-key.', 'setup keys'],
  ['policy.', 'access policy'],
  ['user.', 'users and sign-ins'],
  ['relay', 'relays and relay tokens'],
  ['account.', 'account and DNS'],
];

function who(e: AuditEventInfo): string {
  if (e.actor.kind === 'user') return e.actor.email ?? 'a user';
  return { cli: 'admin CLI', device: 'the device', relay: 'the relay', system: 'the broker' }[e.actor.kind];
}

function detailText(value: unknown): string {
  if (value === null) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** One query of the log: its filters and the pages read so far (newest first). */
interface Loaded {
  events: AuditEventInfo[];
  next: number | null;
}

/** The account's audit log (owners and admins): who changed what, when and from where. */
export function AuditLogPage() {
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  const [action, setAction] = useState('');
  const [log, setLog] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const timer = setTimeout(() => setQ(text.trim()), TYPING_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [text]);

  const fetchPage = useCallback(
    (before: number | null) => {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (action) params.set('action', action);
      if (q) params.set('q', q);
      if (before !== null) params.set('before', String(before));
      return api('GET', `${API_PATHS.audit}?${params}`, AuditPage);
    },
    [action, q],
  );

  const load = useCallback(async () => {
    try {
      setLog(await fetchPage(null));
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, [fetchPage]);
  useEffect(() => {
    void load();
  }, [load]);

  const older = async () => {
    if (!log?.next) return;
    try {
      const page = await fetchPage(log.next);
      setLog({ events: [...log.events, ...page.events], next: page.next });
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <section>
      <h1>Audit log</h1>
      <p className="sub">
        Every change to this account: who made it, from which address, and when. Newest first.{' '}
        <button type="button" onClick={() => void load()}>
          Refresh
        </button>
      </p>
      <ErrorLine error={error} />
      <form className="inline" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search{' '}
          <input
            name="audit-search"
            type="search"
            value={text}
            placeholder="email, device, key name, address"
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        <label>
          Kind{' '}
          <select name="audit-kind" value={action} onChange={(e) => setAction(e.target.value)}>
            {KINDS.map(([prefix, label]) => (
              <option key={prefix} value={prefix}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </form>
      {log === null ? (
        <p>Loading…</p>
      ) : log.events.length === 0 ? (
        <p>No change matches.</p>
      ) : (
        <ListTable columns={['When', 'Who', 'From', 'What', 'Target', 'Details']}>
          {log.events.map((e) => (
            <tr key={e.id} data-audit-action={e.action}>
              <td>{new Date(e.at).toLocaleString()}</td>
              <td>{who(e)}</td>
              <td>{e.actor.address ? <code>{e.actor.address}</code> : '—'}</td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.target.name ?? e.target.id ?? e.target.kind}</td>
              <td className="audit-details">
                {Object.entries(e.details).map(([k, v]) => (
                  <span key={k}>
                    {k}: {detailText(v)}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </ListTable>
      )}
      {log?.next && (
        <p>
          <button type="button" onClick={() => void older()}>
            Older
          </button>
        </p>
      )}
    </section>
  );
}
