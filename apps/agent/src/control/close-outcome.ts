import { CloseCode } from '@trellis/proto';
import { KeyRotationRefused } from './rotation-request';

/** Why a device that enrolled in an account requiring approval is not connected yet (it keeps trying). */
export const PENDING_APPROVAL = 'waiting for an admin to approve this device in the dashboard';

/** What a control connection the broker (or the network) closed means for the agent. */
export type CloseOutcome =
  | { kind: 'removed'; error: string }
  /** The broker refused the key in use: the next connection tries the other one. */
  | { kind: 'key-refused'; error: string }
  | { kind: 'retry'; error: string };

/**
 * `socketError`: why the socket failed, if it did. (A connection the agent closes itself is
 * detached first: its close never comes here.)
 */
export function closeOutcome(code: number, reason: string, socketError: string | null): CloseOutcome {
  if (code === CloseCode.deviceRemoved) return { kind: 'removed', error: 'device removed by the broker' };
  if (code === CloseCode.keyChanged)
    return { kind: 'key-refused', error: `the broker replaced this device's key: ${reason}` };
  if (code === CloseCode.authFailed)
    return { kind: 'key-refused', error: `broker refused authentication: ${reason}` };
  if (code === CloseCode.protocolMismatch) return { kind: 'retry', error: `protocol mismatch: ${reason}` };
  if (code === CloseCode.pendingApproval) return { kind: 'retry', error: PENDING_APPROVAL };
  return { kind: 'retry', error: closeText(code, reason, socketError) };
}

/** Why the connection ended, in words (what a pending rotation is rejected with). */
export function closeText(code: number, reason: string, socketError: string | null): string {
  return socketError ?? `closed by broker (${code}${reason ? `: ${reason}` : ''})`;
}

/** What a rotation still waiting for the broker's answer fails with when the connection closed. */
export function rotationError(code: number, reason: string, socketError: string | null): Error {
  if (code === CloseCode.rotationRefused) return new KeyRotationRefused(reason);
  return new Error(
    `the connection ended before the broker answered: ${closeText(code, reason, socketError)}`,
  );
}
