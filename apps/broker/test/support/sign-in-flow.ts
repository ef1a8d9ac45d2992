import {
  API_PATHS,
  type DeviceAuthDecisionResponse,
  type DeviceAuthResponse,
  EnrollResponse,
  PROTOCOL_VERSION,
} from '@trellis/proto';
import type { TestBroker } from './fixture';
import type { TestDevice } from './test-device';

/**
 * `device` signs in once (RFC 8628) as `name`, and the user of `token` approves it: resolves with the
 * decision and the enrollment the device's poll collected (also set on the device). The broker must
 * have a short poll interval (`deviceAuthIntervalSeconds: 1`).
 */
export async function signInDevice(t: TestBroker, device: TestDevice, name: string, token: string) {
  const started = (
    await t.api('POST', API_PATHS.deviceAuth, {
      body: {
        protocolVersion: PROTOCOL_VERSION,
        publicKey: device.keys.publicKey,
        name,
        hostname: name,
        os: 'linux',
      },
    })
  ).json as DeviceAuthResponse;
  const decided = await t.api('POST', API_PATHS.deviceAuthRequests, {
    token,
    body: { userCode: started.userCode, approve: true },
  });
  if (decided.status !== 200) throw new Error(`approval failed: ${decided.status} ${decided.text}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1_050));
    const res = await t.api('POST', API_PATHS.deviceAuthToken, { body: { deviceCode: started.deviceCode } });
    if (res.status === 200) {
      device.enrollment = EnrollResponse.parse(res.json);
      return { decided: decided.json as DeviceAuthDecisionResponse, enrolled: device.enrollment };
    }
    if (!/authorization_pending|slow_down/.test(String(res.json?.code))) {
      throw new Error(`poll failed: ${res.status} ${res.text}`);
    }
  }
}
