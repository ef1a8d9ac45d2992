import type { Agent } from 'node:https';
import {
  BrokerRotation,
  type DeviceAuthRequest,
  type EnrollResponse,
  type ResolveHost,
  type SignInPrompt,
} from '@trellis/proto';
import { BrokerRejectedError } from '../control/broker-call';
import { pollDeviceToken, startDeviceAuth } from '../control/device-auth-client';
import { UserError } from '../util/user-error';
import { SignInPoller } from './sign-in-poller';

/** What a finished sign-in enrolled, and at which instance. */
export interface SignedIn {
  response: EnrollResponse;
  url: string;
}

/**
 * One device sign-in (RFC 8628) while it is pending: the code pair the user approves in the
 * dashboard, and the polls for the enrollment (SignInPoller decides when). `done` settles with
 * the enrollment, or with why there is none (denied, expired, cancelled).
 */
export class DeviceSignIn {
  readonly done: Promise<SignedIn>;
  private cancelled: string | null = null;
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly prompt: SignInPrompt,
    private readonly poller: SignInPoller,
    private readonly poll: () => ReturnType<typeof pollDeviceToken>,
    url: string,
  ) {
    this.done = this.run().then((response) => ({ response, url }));
    // Whoever waits sees the outcome; nobody waiting must not make it an unhandled rejection.
    this.done.catch(() => undefined);
  }

  /** Asks the broker's instances in turn for a code pair; the first that answers is polled. */
  static async start(
    brokerUrls: readonly string[],
    agent: Agent,
    body: Omit<DeviceAuthRequest, 'proof'>,
    privateKey: string,
    resolveHost: ResolveHost,
  ): Promise<DeviceSignIn> {
    const rotation = new BrokerRotation(brokerUrls);
    await rotation.newRound(resolveHost);
    const failures: string[] = [];
    for (let target = rotation.take(); target !== null; target = rotation.take()) {
      const options = { agent, address: target.address };
      try {
        const { started, brokerPublicKey } = await startDeviceAuth(target.url, body, privateKey, options);
        const now = Date.now();
        const prompt: SignInPrompt = {
          broker: target.url,
          verificationUri: started.verificationUri,
          verificationUriComplete: started.verificationUriComplete,
          userCode: started.userCode,
          expiresAt: new Date(now + started.expiresIn * 1000).toISOString(),
        };
        const poll = () => pollDeviceToken(target.url, started.deviceCode, brokerPublicKey, options);
        return new DeviceSignIn(prompt, new SignInPoller(started, now), poll, target.url);
      } catch (err) {
        // A refusal is final: every instance shares the database and would say the same.
        if (err instanceof BrokerRejectedError) throw new UserError(err.message);
        failures.push((err as Error).message);
      }
    }
    throw new UserError(
      failures.length === 1 ? failures.join('') : `no broker instance answered: ${failures.join('; ')}`,
    );
  }

  /** Stops polling; `done` rejects with `why`. */
  cancel(why: string): void {
    this.cancelled ??= why;
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async run(): Promise<EnrollResponse> {
    for (;;) {
      if (this.cancelled !== null) throw new UserError(this.cancelled);
      const step = this.poller.next(Date.now());
      if (step.kind === 'granted') return step.response;
      if (step.kind === 'failed') throw new UserError(step.reason);
      if (step.kind === 'wait') await this.sleep(step.ms);
      else this.poller.onResult(await this.poll(), Date.now());
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}
