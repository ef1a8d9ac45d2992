import { API_PATHS, WebSession } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';

export function SignInPage({ onSignedIn }: { onSignedIn: (s: WebSession) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      onSignedIn(
        await api('POST', API_PATHS.session, WebSession, {
          email: String(form.get('email') ?? ''),
          password: String(form.get('password') ?? ''),
        }),
      );
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="narrow">
      <h1>Sign in to Trellis</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <ErrorLine error={error} />
      </form>
    </main>
  );
}
