import { API_PATHS, DeviceAuthDecisionResponse, DeviceAuthInfo } from '@trellis/proto';
import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';

/** The code from `#code=XXXX-XXXX`: in the fragment, so it never reached a server or its logs. */
const codeFromFragment = () => new URLSearchParams(location.hash.slice(1)).get('code') ?? '';

type State =
  | { kind: 'enter' }
  | { kind: 'found'; request: DeviceAuthInfo }
  | { kind: 'decided'; result: DeviceAuthDecisionResponse };

/** Sign in once (RFC 8628): the user checks the device that asked and approves or denies it. */
export function DeviceApprovalPage() {
  const [code, setCode] = useState(codeFromFragment);
  const [state, setState] = useState<State>({ kind: 'enter' });
  const [error, setError] = useState<string | null>(null);

  const lookUp = useCallback(async (userCode: string) => {
    setError(null);
    try {
      const request = await api(
        'GET',
        `${API_PATHS.deviceAuthRequests}/${encodeURIComponent(userCode)}`,
        DeviceAuthInfo,
      );
      setState({ kind: 'found', request });
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);
  useEffect(() => {
    const initial = codeFromFragment();
    if (initial) void lookUp(initial);
  }, [lookUp]);

  const decide = async (approve: boolean) => {
    if (state.kind !== 'found') return;
    setError(null);
    try {
      const result = await api('POST', API_PATHS.deviceAuthRequests, DeviceAuthDecisionResponse, {
        userCode: state.request.userCode,
        approve,
      });
      setState({ kind: 'decided', result });
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void lookUp(code);
  };
  return (
    <section className="narrow">
      <h1>Add a device</h1>
      {state.kind === 'enter' && (
        <form onSubmit={submit}>
          <label>
            Code shown by <code>trellis up</code>
            <input value={code} onChange={(e) => setCode(e.target.value)} placeholder="XXXX-XXXX" required />
          </label>
          <button type="submit">Continue</button>
        </form>
      )}
      {state.kind === 'found' && (
        <div className="card">
          <p>This device asks to join your mesh:</p>
          <dl>
            <dt>Name</dt>
            <dd>{state.request.name ?? state.request.hostname}</dd>
            <dt>Host name</dt>
            <dd>{state.request.hostname}</dd>
            <dt>System</dt>
            <dd>{state.request.os}</dd>
            <dt>Asked from</dt>
            <dd>{state.request.requestedFrom}</dd>
            <dt>Code</dt>
            <dd>{state.request.userCode}</dd>
            <dt>Expires</dt>
            <dd>{new Date(state.request.expiresAt).toLocaleTimeString()}</dd>
          </dl>
          <p>Approve only if you started this on that device just now.</p>
          <button type="button" className="primary" onClick={() => void decide(true)}>
            Approve
          </button>
          <button type="button" onClick={() => void decide(false)}>
            Deny
          </button>
        </div>
      )}
      {state.kind === 'decided' && (
        <p className="done" role="status">
          {state.result.approved && state.result.awaitingAdmin
            ? `Approved by you: ${state.result.name} joins your mesh once an admin approves it too.`
            : state.result.approved
              ? `Approved: ${state.result.name} is joining your mesh.`
              : 'Denied: the device was not added.'}
        </p>
      )}
      <ErrorLine error={error} />
    </section>
  );
}
