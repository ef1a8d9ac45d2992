import {
  API_PATHS,
  OIDC_RETURN_TO_PARAM,
  OidcSignInError,
  SIGN_IN_ERROR_MESSAGES,
  SIGN_IN_ERROR_PARAM,
  SignInOptions,
  WebSession,
} from '@trellis/proto';
import { type FormEvent, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';

/**
 * The page's fragment (the device page's `#code=…`) never reaches the server, so it does not come
 * back from the provider: it is kept here for the page the sign-in returns to, for a while.
 */
const RETURN_KEY = 'trellis.signIn.return';
const RETURN_TTL_MS = 10 * 60_000;

/** Puts back the fragment a single sign-on left this page with (once, on this same page). */
function restoreFragment(): void {
  const saved = sessionStorage.getItem(RETURN_KEY);
  if (!saved) return;
  sessionStorage.removeItem(RETURN_KEY);
  try {
    const { path, hash, at } = JSON.parse(saved) as { path: string; hash: string; at: number };
    if (path === location.pathname && !location.hash && Date.now() - at < RETURN_TTL_MS) {
      history.replaceState(history.state, '', `${location.pathname}${location.search}${hash}`);
    }
  } catch {
    // Not ours to read: dropped.
  }
}

/** A failed single sign-on's reason from the address bar, which it is then taken out of. */
function takeSignInError(): string | null {
  const params = new URLSearchParams(location.search);
  const raw = params.get(SIGN_IN_ERROR_PARAM);
  if (raw === null) return null;
  params.delete(SIGN_IN_ERROR_PARAM);
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  const reason = OidcSignInError.safeParse(raw);
  return reason.success ? SIGN_IN_ERROR_MESSAGES[reason.data] : 'Single sign-on failed.';
}

// Once, as the page loads (before any page reads its fragment or the address bar).
restoreFragment();
const errorOnLoad = takeSignInError();

function startSingleSignOn(): void {
  sessionStorage.setItem(
    RETURN_KEY,
    JSON.stringify({ path: location.pathname, hash: location.hash, at: Date.now() }),
  );
  const start = new URLSearchParams({ [OIDC_RETURN_TO_PARAM]: `${location.pathname}${location.search}` });
  location.assign(`${API_PATHS.oidcStart}?${start}`);
}

export function SignInPage({ onSignedIn }: { onSignedIn: (s: WebSession) => void }) {
  const [error, setError] = useState<string | null>(errorOnLoad);
  const [busy, setBusy] = useState(false);
  const [options, setOptions] = useState<SignInOptions | null>(null);
  useEffect(() => {
    // Without an answer the password form is still there: it is always offered.
    api('GET', API_PATHS.signInOptions, SignInOptions).then(setOptions, () => setOptions(null));
  }, []);
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
      {options?.oidc && (
        <div className="sso">
          <button type="button" className="primary" onClick={startSingleSignOn}>
            Sign in with {options.oidc.name}
          </button>
          <p className="or">or with your email and password</p>
        </div>
      )}
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
