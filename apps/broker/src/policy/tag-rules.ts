import { cidrBlock, mayApplyTag, type Policy, type TagApplier } from '@trellis/policy';
import { badRequest, DomainError, forbidden } from '../domain/errors';

/** Who changes tags: a signed-in user, or the broker's operator (the admin socket), who owns every tag. */
export type TagActor = TagApplier;

export const OPERATOR: TagActor = { email: 'operator', role: 'owner' };

/**
 * Refuses tags the policy does not declare, and tags the actor does not own among `added`. Tags a
 * device keeps are not checked again: an owner may take a tag off without owning the others.
 */
export function checkTags(policy: Policy, actor: TagActor, added: readonly string[]): void {
  const undeclared = added.filter((t) => !policy.tagOwners.has(t));
  if (undeclared.length > 0) {
    throw badRequest(`${undeclared.join(', ')}: not declared in the policy's tagOwners`);
  }
  const denied = added.filter((t) => !mayApplyTag(policy, actor, t));
  if (denied.length > 0) {
    throw forbidden(
      `${actor.email} is not among the owners of ${denied.join(', ')} in the policy's tagOwners`,
    );
  }
}

/** The CIDR of the policy block `name`, or a 409 naming the block. */
export function blockCidr(policy: Policy, name: string): string {
  const cidr = cidrBlock(policy, name);
  if (cidr === undefined) {
    throw new DomainError(409, 'conflict', `the policy has no block "${name}" in its cidrs`);
  }
  return cidr;
}
