import type { ControlSession } from '../../src/control/control-session';

/**
 * A connected device for hub tests: its frames go to `send`; no round trips measured yet, and
 * closing does nothing. `extra` overrides the defaults (account, connection, serial, compact).
 */
export function fakeSession(
  deviceId: string,
  send: ControlSession['send'],
  extra: Partial<Omit<ControlSession, 'deviceId' | 'send'>> = {},
): ControlSession {
  return {
    deviceId,
    accountId: 'acct',
    connectionId: `c:${deviceId}`,
    serial: 1,
    rttMs: () => null,
    relayRttMs: () => ({}),
    close: () => {},
    send,
    ...extra,
  };
}
