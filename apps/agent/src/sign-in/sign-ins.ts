import type { BrokerTrust, DeviceAuthRequest, ResolveHost, SignInPrompt } from '@trellis/proto';
import type { Logger } from 'pino';
import { createBrokerAgent } from '../trust/broker-trust';
import { sharesUrl } from '../trust/broker-url';
import { UserError } from '../util/user-error';
import { DeviceSignIn, type SignedIn } from './device-sign-in';

/** What the sign-ins need of the agent. */
export interface SignInsHost {
  privateKey(): string;
  resolveHost: ResolveHost;
  log: Logger;
  /**
   * The user approved: enroll and join (in the agent's queue of user operations), unless
   * `stillWanted()` says a `down` or another enrollment came first; the `up` message.
   */
  granted(signed: SignedIn, urls: string[], trust: BrokerTrust, stillWanted: () => boolean): Promise<string>;
  /** A sign-in nobody replaced or cancelled ended: `error` says why it failed (null: it succeeded). */
  ended(error: string | null): void;
}

interface Pending {
  flow: DeviceSignIn;
  urls: string[];
  /** Settles once the sign-in has ended: the `up` message, or why not. */
  finished: Promise<string>;
}

/** The device's sign-in while one is pending (at most one): started by `up`, ended by approval or failure. */
export class SignIns {
  private current: Pending | null = null;

  constructor(private readonly host: SignInsHost) {}

  get pending(): SignInPrompt | null {
    return this.current?.flow.prompt ?? null;
  }

  get finished(): Promise<string> | null {
    return this.current?.finished ?? null;
  }

  /**
   * The pending sign-in's prompt when it is with one of `brokers` (or none are named), else a new
   * sign-in with `brokers` in place of any pending one.
   */
  async begin(
    brokers: string[] | null,
    trust: BrokerTrust | undefined,
    body: Omit<DeviceAuthRequest, 'proof'>,
  ): Promise<SignInPrompt> {
    const current = this.current;
    if (current && (!brokers || sharesUrl(current.urls, brokers))) return current.flow.prompt;
    if (!brokers)
      throw new UserError('this device is not enrolled: run `trellis up --broker URL` to sign in');
    this.cancel('replaced by a new sign-in');
    const agent = createBrokerAgent(trust ?? {});
    let flow: DeviceSignIn;
    try {
      flow = await DeviceSignIn.start(brokers, agent, body, this.host.privateKey(), this.host.resolveHost);
    } catch (err) {
      agent.destroy();
      throw err;
    }
    const entry: Pending = { flow, urls: brokers, finished: Promise.resolve('') };
    entry.finished = flow.done.then((signed) =>
      this.host.granted(signed, brokers, trust ?? {}, () => this.current === entry),
    );
    const { finished } = entry;
    this.current = entry;
    const end = (error: string | null) => {
      agent.destroy();
      if (error !== null) this.host.log.warn({ err: error }, 'sign-in ended without an enrollment');
      if (this.current !== entry) return;
      this.current = null;
      this.host.ended(error);
    };
    finished.then(
      () => end(null),
      (err: Error) => end(err.message),
    );
    const { broker, expiresAt } = flow.prompt;
    this.host.log.info({ broker, expiresAt }, 'sign-in started: waiting for the user to approve this device');
    return flow.prompt;
  }

  /** Ends the pending sign-in, if any: whoever waits for it hears `why`. */
  cancel(why: string): void {
    const current = this.current;
    if (!current) return;
    this.current = null;
    current.flow.cancel(why);
  }
}
