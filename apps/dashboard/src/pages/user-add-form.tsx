import { AccountUserInfo, API_PATHS, MIN_USER_PASSWORD_LENGTH, type Role } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';

/** Adding a user: email, role (an admin may add members only) and an initial password. */
export function UserAddForm({
  roles,
  onAdded,
}: {
  roles: readonly Role[];
  onAdded: (u: AccountUserInfo) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const data = new FormData(form);
    setError(null);
    try {
      const added = await api('POST', API_PATHS.users, AccountUserInfo, {
        email: String(data.get('email') ?? '').trim(),
        role: String(data.get('role') ?? 'member'),
        password: String(data.get('password') ?? ''),
      });
      form.reset();
      onAdded(added);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <form className="inline" aria-label="Add a user" onSubmit={(e) => void submit(e)}>
        <label>
          Email <input name="email" type="email" required maxLength={254} autoComplete="off" />
        </label>
        <label>
          Role{' '}
          <select name="role" defaultValue="member">
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label>
          Initial password{' '}
          <input
            name="password"
            type="password"
            required
            minLength={MIN_USER_PASSWORD_LENGTH}
            maxLength={1024}
            autoComplete="new-password"
            placeholder={`at least ${MIN_USER_PASSWORD_LENGTH} characters`}
          />
        </label>
        <button type="submit" className="primary">
          Add user
        </button>
      </form>
      <ErrorLine error={error} />
    </>
  );
}
