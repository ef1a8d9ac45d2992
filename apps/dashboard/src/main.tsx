import { API_PATHS, WebSession } from '@trellis/proto';
import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiError, api, rememberSession } from './api';
import { ErrorLine } from './components';
import { DeviceApprovalPage } from './pages/device-approval';
import { DevicesPage } from './pages/devices';
import { SetupKeysPage } from './pages/setup-keys';
import { SignInPage } from './pages/sign-in';
import './styles.css';

/** The page a path shows; the app routes itself (the broker serves index.html for every page path). */
const PATHS = { devices: '/devices', device: API_PATHS.deviceVerification, keys: '/setup-keys' } as const;
type Page = keyof typeof PATHS;
const pageOf = (path: string): Page =>
  (Object.keys(PATHS) as Page[]).find((p) => PATHS[p] === path) ?? 'devices';

function App() {
  const [session, setSession] = useState<WebSession | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [page, setPage] = useState<Page>(pageOf(location.pathname));
  const signedIn = useCallback((s: WebSession | null) => {
    rememberSession(s);
    setSession(s);
  }, []);

  useEffect(() => {
    api('GET', API_PATHS.session, WebSession).then(signedIn, (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) signedIn(null);
      else setError(`The broker did not answer: ${(err as Error).message}. Reload to try again.`);
    });
    const onPop = () => setPage(pageOf(location.pathname));
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, [signedIn]);

  const go = (to: Page) => {
    history.pushState(null, '', PATHS[to]);
    setPage(to);
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
  const shown = page === 'keys' && !admin ? 'devices' : page;
  return (
    <>
      <header className="bar">
        <strong>Trellis</strong>
        <nav>
          <button type="button" className={page === 'devices' ? 'active' : ''} onClick={() => go('devices')}>
            Devices
          </button>
          <button type="button" className={page === 'device' ? 'active' : ''} onClick={() => go('device')}>
            Add a device
          </button>
          {admin && (
            <button type="button" className={page === 'keys' ? 'active' : ''} onClick={() => go('keys')}>
              Setup keys
            </button>
          )}
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
        {shown === 'device' && <DeviceApprovalPage />}
        {shown === 'keys' && <SetupKeysPage />}
        {shown === 'devices' && <DevicesPage admin={admin} />}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
