import { AccountUserInfo, API_PATHS, RemovedUser, type Role, type WebSession } from '@trellis/proto';
import { useState } from 'react';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { useApiGet } from '../use-api-get';
import { UserAddForm } from './user-add-form';

const UserList = AccountUserInfo.array();

const ALL_ROLES: readonly Role[] = ['member', 'admin', 'owner'];
const counted = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

/** What removing `u` does, said before it is done. */
function removalWarning(u: AccountUserInfo): string {
  const devices = u.devices === 1 ? 'their device is' : `their ${u.devices} devices are`;
  return `Remove ${u.email}? They are signed out everywhere at once, the setup keys they created stop working${
    u.devices > 0 ? `, and ${devices} removed from the mesh` : ''
  }. This cannot be undone.`;
}

/**
 * Users and roles (owners and admins). Only an owner grants or takes owner and admin; the last
 * owner stays; nobody changes their own role or removes themselves (the broker enforces all of it;
 * the page only leaves out what would be refused).
 */
export function UsersPage({ session }: { session: WebSession }) {
  const me = session.user;
  const owner = me.role === 'owner';
  const [confirming, setConfirming] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { data: users, load } = useApiGet(API_PATHS.users, UserList, setError);

  // The list is read again before the notice shows: what the notice says is what the list shows.
  const act = async (what: () => Promise<string>) => {
    setError(null);
    setNotice(null);
    let done: string | null = null;
    try {
      done = await what();
    } catch (err) {
      setError((err as Error).message);
    }
    setConfirming(null);
    await load();
    setNotice(done);
  };
  const setRole = (u: AccountUserInfo, role: Role) =>
    act(async () => {
      await api('PUT', `${API_PATHS.users}/${u.id}/role`, AccountUserInfo, { role });
      return `${u.email} is now ${role === 'admin' ? 'an' : 'a'} ${role}; it applies to their next request.`;
    });
  const remove = (u: AccountUserInfo) =>
    act(async () => {
      const r = await api('DELETE', `${API_PATHS.users}/${u.id}`, RemovedUser);
      return `${r.user.email} removed: ${counted(r.sessionsEnded, 'session')} ended, ${counted(r.devicesRemoved, 'device')} removed, ${counted(r.setupKeysRevoked, 'setup key')} revoked.`;
    });
  // What this user may do to `u`: an admin manages members only, and nobody manages themselves.
  const manageable = (u: AccountUserInfo) => u.id !== me.id && (owner || u.role === 'member');

  return (
    <section>
      <h1>Users</h1>
      <p className="sub">
        {owner
          ? 'As an owner you may grant and take every role. An account always keeps at least one owner.'
          : 'As an admin you add and remove members; only an owner grants or takes owner and admin.'}{' '}
        Removing a user signs them out everywhere, revokes the setup keys they created and removes their
        devices.
      </p>
      <UserAddForm
        roles={owner ? ALL_ROLES : ['member']}
        onAdded={(u) => {
          setNotice(`${u.email} added as ${u.role}: give them the initial password yourself.`);
          void load();
        }}
      />
      {notice && (
        <p className="done" role="status">
          {notice}
        </p>
      )}
      <ErrorLine error={error} />
      {users && (
        <ListTable columns={['Email', 'Role', 'Devices', 'Added', 'Last sign-in', '']}>
          {users.map((u) => (
            <tr key={u.id} data-user={u.email}>
              <td>
                {u.email}
                {u.id === me.id && <span className="sub"> (you)</span>}
              </td>
              <td>
                {manageable(u) && owner ? (
                  <select
                    aria-label={`Role of ${u.email}`}
                    value={u.role}
                    onChange={(e) => void setRole(u, e.target.value as Role)}
                  >
                    {ALL_ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                ) : (
                  u.role
                )}
              </td>
              <td>{u.devices}</td>
              <td>{when(u.createdAt)}</td>
              <td>{when(u.lastSignInAt)}</td>
              <td>
                {manageable(u) &&
                  (confirming === u.id ? (
                    <span className="confirm">
                      {removalWarning(u)}{' '}
                      <button type="button" className="danger" onClick={() => void remove(u)}>
                        Remove {u.email}
                      </button>
                      <button type="button" onClick={() => setConfirming(null)}>
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <button type="button" onClick={() => setConfirming(u.id)}>
                      Remove
                    </button>
                  ))}
              </td>
            </tr>
          ))}
        </ListTable>
      )}
    </section>
  );
}
