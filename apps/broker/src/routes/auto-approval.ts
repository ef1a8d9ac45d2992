import type { DeviceState } from '@trellis/proto';
import { AccountPolicy } from '../policy/account-policy';

/** Which prefixes the policy in force approves for this device as soon as it advertises them. */
export type AutoApprover = (
  policy: { version: number; text: string },
  device: DeviceState,
) => (prefix: string) => boolean;

/** The policy's autoApprovers (routes, exitNode), over the device alone: they name only its owner and tags. */
export const policyAutoApprover: AutoApprover = (policy, device) => {
  const built = AccountPolicy.build(policy.version, policy.text, [device]);
  return (prefix) => built.autoApproves(device, prefix);
};
