import { normalEmail, userAtom } from './selectors';
import type { Policy } from './types';

export interface TagApplier {
  email: string;
  role: 'owner' | 'admin' | 'member';
}

/**
 * Whether `user` may put `tag` on a device. Undeclared tags: nobody. The account owner: any
 * declared tag. Anyone else (admins too): only when listed among the tag's owners, directly as
 * user:EMAIL or as a user: member of a listed group (nested groups count).
 */
export function mayApplyTag(policy: Policy, user: TagApplier, tag: string): boolean {
  const owners = policy.tagOwners.get(tag);
  if (!owners) return false;
  if (user.role === 'owner') return true;
  const me = userAtom(normalEmail(user.email));
  return owners.some((o) => o === me || (o.startsWith('group:') && policy.groups.get(o)?.has(me) === true));
}
