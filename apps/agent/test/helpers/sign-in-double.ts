import { randomBytes } from 'node:crypto';
import { type KeyPair, verifyEnrollProof } from '@trellis/crypto';
import {
  API_PATHS,
  DEVICE_AUTH_PROOF_LABEL,
  DeviceAuthRequest,
  type DeviceAuthResponse,
  type DeviceTokenError,
  DeviceTokenRequest,
  type EnrollResponse,
  formatUserCode,
} from '@trellis/proto';

interface PendingSignIn {
  deviceCode: string;
  userCode: string;
  request: DeviceAuthRequest & { endpoints: string[] };
  state: 'pending' | 'approved' | 'denied' | 'spent';
  /** When each poll arrived (ms since the epoch). */
  polls: number[];
}

const error = (status: number, code: string, message: string): [number, object] => [
  status,
  { statusCode: status, error: 'Error', message, code },
];

/**
 * The broker double's side of the device authorization grant, from proto only: code pairs, polls
 * answered as the RFC says, and approval or denial by the test instead of a signed-in user.
 */
export class SignInDouble {
  readonly requests: PendingSignIn[] = [];
  /** Seconds the devices are told to wait between polls. */
  interval = 1;
  /** Seconds the codes live. */
  expiresIn = 600;
  /** Answer this many polls with `slow_down` first. */
  slowDowns = 0;
  /** Versions a sign-in may carry; `(v) => v === 1`: a broker from before capability versions. */
  acceptsVersion: (version: number) => boolean = () => true;

  constructor(
    private readonly keys: KeyPair,
    private readonly enroll: (data: {
      publicKey: string;
      name?: string | undefined;
      endpoints: string[];
    }) => EnrollResponse,
  ) {}

  handles(url: string | undefined): boolean {
    return url === API_PATHS.deviceAuth || url === API_PATHS.deviceAuthToken;
  }

  answer(url: string, body: string, baseUrl: string): [number, object] {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return error(400, 'bad_request', 'body is not JSON');
    }
    return url === API_PATHS.deviceAuth ? this.start(json, baseUrl) : this.poll(json);
  }

  approve(userCode = this.latest().userCode): void {
    this.find(userCode).state = 'approved';
  }

  deny(userCode = this.latest().userCode): void {
    this.find(userCode).state = 'denied';
  }

  latest(): PendingSignIn {
    const last = this.requests.at(-1);
    if (!last) throw new Error('no sign-in was started');
    return last;
  }

  private find(userCode: string): PendingSignIn {
    const found = this.requests.find((r) => r.userCode === userCode);
    if (!found) throw new Error(`no sign-in with code ${userCode}`);
    return found;
  }

  private start(json: unknown, baseUrl: string): [number, object] {
    const parsed = DeviceAuthRequest.safeParse(json);
    if (!parsed.success) return error(400, 'bad_request', parsed.error.message);
    const { proof, publicKey, protocolVersion } = parsed.data;
    if (!this.acceptsVersion(protocolVersion))
      return error(
        400,
        'protocol_mismatch',
        `protocol version ${protocolVersion} not supported (broker speaks 1)`,
      );
    const k = this.keys;
    if (
      !proof ||
      !verifyEnrollProof(k.privateKey, k.publicKey, publicKey, DEVICE_AUTH_PROOF_LABEL, proof, Date.now())
    )
      return error(401, 'proof_required', 'no valid proof of the private key');
    const userCode = formatUserCode(
      `BCDF${'GHJKLMNP'.slice(this.requests.length % 4, (this.requests.length % 4) + 4)}`,
    );
    const deviceCode = `tdev_${randomBytes(32).toString('base64url')}`;
    this.requests.push({ deviceCode, userCode, request: parsed.data, state: 'pending', polls: [] });
    const res: DeviceAuthResponse = {
      deviceCode,
      userCode,
      verificationUri: `${baseUrl}/device`,
      verificationUriComplete: `${baseUrl}/device#code=${userCode}`,
      expiresIn: this.expiresIn,
      interval: this.interval,
    };
    return [200, res];
  }

  private poll(json: unknown): [number, object] {
    const parsed = DeviceTokenRequest.safeParse(json);
    if (!parsed.success) return error(400, 'bad_request', parsed.error.message);
    const found = this.requests.find((r) => r.deviceCode === parsed.data.deviceCode);
    const refuse = (code: DeviceTokenError, message: string) => error(400, code, message);
    if (!found) return refuse('expired_token', 'unknown code');
    found.polls.push(Date.now());
    if (this.slowDowns > 0) {
      this.slowDowns -= 1;
      return refuse('slow_down', 'polled too often');
    }
    if (found.state === 'pending') return refuse('authorization_pending', 'waiting for approval');
    if (found.state === 'denied') return refuse('access_denied', 'denied');
    if (found.state === 'spent') return refuse('expired_token', 'used already');
    found.state = 'spent';
    const { publicKey, name, endpoints } = found.request;
    return [200, this.enroll({ publicKey, name, endpoints })];
  }
}
