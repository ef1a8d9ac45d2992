import { API_PATHS, WebSession } from '@trellis/proto';
import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiError, api, rememberSession } from './api';
import { ErrorLine } from './components';
import { SignInPage } from './pages/sign-in';
import { ROUTES, routeFor } from './routes';
import './styles.css';

function App() {
  const [session, setSession] = useState<WebSession | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  // The app routes itself: the path in the address bar is the page.
  const [path, setPath] = useState(location.pathname);
  const signedIn = useCallback((s: WebSession | null) => {
    rememberSession(s);
    setSession(s);
  }, []);

  useEffect(() => {
    api('GET', API_PATHS.session, WebSession).then(signedIn, (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) signedIn(null);
      else setError(`The broker did not answer: ${(err as Error).message}. Reload to try again.`);
    });
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, [signedIn]);

  const go = (to: string) => {
    history.pushState(null, '', to);
    setPath(to);
  };
  const signOut = async () => {
    try {
      await api('DELETE', API_PATHS.session, null);
      signedIn(null);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  if (session === undefined) return error ? <ErrorLine error={error} /> : <p className="loading">Loading…</p>;
  if (session === null) return <SignInPage onSignedIn={signedIn} />;
  const admin = session.user.role !== 'member';
  const shown = routeFor(path, admin);
  return (
    <>
      <header className="bar">
        <strong>Trellis</strong>
        <nav>
          {ROUTES.filter((r) => admin || !r.adminOnly).map((r) => (
            <button
              key={r.path}
              type="button"
              className={r === shown ? 'active' : ''}
              onClick={() => go(r.path)}
            >
              {r.label}
            </button>
          ))}
        </nav>
        <span className="who">
          {session.user.email} ({session.user.role}, {session.user.accountName})
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <ErrorLine error={error} />
        {shown.render({ session, admin })}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
