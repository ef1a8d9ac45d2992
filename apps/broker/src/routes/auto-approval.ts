import { autoApproves } from '@trellis/policy';
import type { DeviceState } from '@trellis/proto';
import { policyDeviceOf } from '../policy/account-policy';
import { type PolicyVersion, parsedPolicyOf } from '../policy/policy-store';

/** Which prefixes the policy version approves for this device as soon as it advertises them. */
export type AutoApprover = (
  accountId: string,
  policy: PolicyVersion,
  device: DeviceState,
) => (prefix: string) => boolean;

/**
 * The policy's autoApprovers (routes, exitNode), over the device alone: they name only its
 * owner and tags. Parsed once per version; a text that does not parse approves nothing.
 */
export const policyAutoApprover: AutoApprover = (accountId, policy, device) => {
  const parsed = parsedPolicyOf(accountId, policy);
  const d = policyDeviceOf(device);
  return (prefix) => parsed !== null && autoApproves(parsed, d, prefix);
};
