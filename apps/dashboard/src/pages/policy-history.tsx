import { API_PATHS, PolicyApplyResult, PolicyDocument, type PolicyVersionInfo } from '@trellis/proto';
import { useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';

/**
 * The policy's versions, newest first: who applied each and when; view one; admins roll back to
 * one (its text applied again as a new version) after a second click confirms.
 */
export function PolicyHistory({
  versions,
  current,
  admin,
  onRolledBack,
}: {
  versions: readonly PolicyVersionInfo[];
  current: number;
  admin: boolean;
  onRolledBack(result: PolicyApplyResult): void;
}) {
  const [viewing, setViewing] = useState<PolicyDocument | null>(null);
  const [confirming, setConfirming] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const view = async (version: number) => {
    setError(null);
    try {
      setViewing(await api('GET', `${API_PATHS.policy}/versions/${version}`, PolicyDocument));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const rollback = async (version: number) => {
    setConfirming(null);
    setError(null);
    try {
      onRolledBack(await api('POST', `${API_PATHS.policy}/rollback`, PolicyApplyResult, { version }));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div>
      <h2>History</h2>
      <ErrorLine error={error} />
      {versions.length === 0 ? (
        <p>
          No policy applied yet: version 0, the default (every device may reach every other), is in force.
        </p>
      ) : (
        <ListTable columns={['Version', 'Applied by', 'When', '']}>
          {versions.map((v) => (
            <tr key={v.version} data-version={v.version}>
              <td>
                {v.version}
                {v.version === current ? ' (in force)' : ''}
                {v.rollbackOf !== null && <div className="sub">rollback to {v.rollbackOf}</div>}
              </td>
              <td>{v.appliedBy}</td>
              <td>{new Date(v.appliedAt).toLocaleString()}</td>
              <td>
                <button type="button" onClick={() => void view(v.version)}>
                  View
                </button>
                {admin &&
                  v.version !== current &&
                  (confirming === v.version ? (
                    <button type="button" className="danger" onClick={() => void rollback(v.version)}>
                      Roll back to version {v.version}
                    </button>
                  ) : (
                    <button type="button" onClick={() => setConfirming(v.version)}>
                      Roll back
                    </button>
                  ))}
              </td>
            </tr>
          ))}
        </ListTable>
      )}
      {viewing && (
        <section className="card" aria-label={`Version ${viewing.version}`}>
          <p>
            Version {viewing.version}, applied by {viewing.appliedBy} on{' '}
            {new Date(viewing.appliedAt).toLocaleString()}{' '}
            <button type="button" onClick={() => setViewing(null)}>
              Close
            </button>
          </p>
          <pre className="policy-text">{viewing.text}</pre>
        </section>
      )}
    </div>
  );
}
