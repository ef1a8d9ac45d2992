import {
  type AgentState,
  type BrokerTrust,
  type EnrollResponse,
  type GatewayPrefs,
  type ResolveHost,
  type RotateKeyResponse,
  type StatusResponse,
  type UpRequest,
} from '@trellis/proto';
import { resolveHostAddresses } from '@trellis/tls';
import type { Logger } from 'pino';
import { PENDING_APPROVAL } from '../control/close-outcome';
import { enrollWithAny } from '../control/enroll-client';
import { GatewaySettings, type PrefsSource } from '../routes/gateway-prefs';
import { restoreLeftovers } from '../routes/mesh-routing';
import type { SignedIn } from '../sign-in/device-sign-in';
import { SignIns } from '../sign-in/sign-ins';
import type { Enrollment } from '../state/state-store';
import { createBrokerAgent } from '../trust/broker-trust';
import { describeTarget, sharesUrl } from '../trust/broker-url';
import { UserError } from '../util/user-error';
import { waitFor } from '../util/wait';
import type { WgDeviceState } from '../wireguard/types';
import { DeviceKeys } from './device-keys';
import { deviceBody, enrollmentFrom, requestedBrokers, type UpResult } from './enrollment-record';
import { MeshSession, type MeshSessionOptions } from './mesh-session';
import { SerialQueue } from './serial-queue';
import { buildStatus, sessionStatusInputs } from './status';

export interface AgentOptions extends MeshSessionOptions {
  /** Reads this device's current LAN candidates. */
  readCandidates: () => string[];
  /** How long `up` waits for the first netmap before answering. */
  upWaitMs?: number;
  /** Puts back a resolver configuration that a crashed run left pointing at its stub. */
  recoverResolver?: () => Promise<void>;
}

/** The daemon's brain: enrollment, sign-in and up/down; while up, a MeshSession holds the mesh. */
export class Agent {
  /** The device key, and a rotation's pending key (see DeviceKeys). */
  private keys: DeviceKeys | null = null;
  private enrollment: Enrollment | null = null;
  /** The mesh while it is up (between `bringUp` and `leaveMesh`). */
  private session: MeshSession | null = null;
  /** Whether WireGuard is up: outlives a session whose teardown failed, so the next one retries it. */
  private meshUp = false;
  private state: AgentState = 'stopped';
  private lastError: string | null = null;
  /** Mesh changes (WireGuard + OS), one at a time. */
  private readonly queue = new SerialQueue();
  /** User operations (up, down, shutdown, removal), one at a time, so two `up`s cannot race. */
  private readonly ops = new SerialQueue();
  private readonly log: Logger;
  /** Sign-ins (RFC 8628) of a device not enrolled yet. */
  private readonly signIns: SignIns;
  /** Gateway settings (`trellis set`), kept in the state directory. */
  private readonly settings: GatewaySettings;
  private readonly resolveHost: ResolveHost = (host) =>
    (this.opts.controlOptions?.resolveHost ?? resolveHostAddresses)(host);

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.settings = new GatewaySettings(opts.store.dir, this.log);
    this.signIns = new SignIns({
      privateKey: () => this.keys!.current.privateKey,
      resolveHost: this.resolveHost,
      log: this.log,
      granted: (signed, urls, trust, wanted) =>
        this.ops.run(() => this.finishSignIn(signed, urls, trust, wanted)),
      ended: (error) => {
        if (error !== null) this.lastError = error;
        if (this.state === 'signing-in' && !this.enrollment) this.state = 'needs-enrollment';
      },
    });
    opts.backend.onRecreated(() => {
      this.log.warn('WireGuard interface was re-created; re-applying the mesh');
      const session = this.session;
      if (session)
        void this.queue.run(() => session.applyMesh('recreated')).catch((err: Error) => this.meshError(err));
    });
  }

  async start(): Promise<void> {
    await this.opts.store.init();
    // Before anything else: names must not point at a stub that died with the last run.
    await this.opts
      .recoverResolver?.()
      .catch((err: Error) =>
        this.log.warn({ err: err.message }, 'the resolver left by the last run was not restored'),
      );
    await this.settings.load();
    this.keys = await DeviceKeys.load(this.opts.store);
    if (this.keys.pending)
      this.log.warn('a key rotation was left unfinished: settled on the next connection');
    this.enrollment = await this.opts.store.loadEnrollment();
    if (!this.enrollment?.wantUp) await restoreLeftovers(this.opts, this.log);
    if (!this.enrollment) {
      this.state = 'needs-enrollment';
      this.log.info('not enrolled; waiting for `trellis up --broker URL` (sign in, or --setup-key KEY)');
    } else if (!this.enrollment.wantUp) {
      this.state = 'stopped';
      this.log.info('enrolled but down; waiting for `trellis up`');
    } else {
      await this.bringUp();
    }
  }

  /** `trellis up`: enrolls (setup key) or starts a sign-in (neither key nor enrollment), then joins. */
  up(req: UpRequest): Promise<UpResult> {
    return this.ops.run(() => this.doUp(req));
  }

  /** `trellis set`: new gateway settings, saved, then applied at once when the mesh is up. */
  set(change: GatewayPrefs): Promise<string> {
    return this.ops.run(() => this.changePrefs(change, 'set'));
  }

  private async changePrefs(change: GatewayPrefs, source: PrefsSource): Promise<string> {
    if (!(await this.settings.change(change, source))) return 'settings unchanged';
    this.session?.routing.prefsChanged();
    return this.session ? 'settings saved and applied' : 'settings saved (applied on `trellis up`)';
  }

  private async doUp(req: UpRequest): Promise<UpResult> {
    if (req.prefs) await this.changePrefs(req.prefs, 'up');
    const current = this.enrollment;
    const brokers = requestedBrokers(req);
    if (req.setupKey) {
      this.signIns.cancel('replaced by an enrollment with a setup key');
      const urls = brokers ?? current?.brokerUrls;
      if (!urls) throw new UserError('--broker URL is required to enroll');
      const sameBroker = current && sharesUrl(current.brokerUrls, urls);
      const trust = req.trust ?? (sameBroker ? current.trust : {});
      await this.enroll(urls, req.setupKey, req.name, trust);
    } else if (!current) {
      const prompt = await this.signIns.begin(brokers, req.trust, this.deviceBody(req.name));
      this.state = 'signing-in';
      return { message: `sign in at ${prompt.verificationUri} with code ${prompt.userCode}`, signIn: prompt };
    } else {
      await this.reconfigure(current, brokers ?? current.brokerUrls, req.trust ?? current.trust);
      if (!current.wantUp) {
        current.wantUp = true;
        await this.opts.store.saveEnrollment(current);
      }
    }
    return { message: await this.join() };
  }

  /** Answers when the pending sign-in has ended: the `up` message, or why it failed. */
  waitForSignIn(): Promise<string> {
    const finished = this.signIns.finished;
    if (finished) return finished;
    if (this.enrollment) return Promise.resolve(`enrolled as ${this.enrollment.name}: no sign-in pending`);
    return Promise.reject(
      new UserError(this.lastError ?? 'no sign-in is pending: run `trellis up --broker URL`'),
    );
  }

  /** The approved sign-in's enrollment is this device's now, unless a `down` or setup key came first. */
  private async finishSignIn(signed: SignedIn, urls: string[], trust: BrokerTrust, wanted: () => boolean) {
    if (!wanted()) throw new UserError('the sign-in was cancelled before its approval arrived');
    await this.adoptEnrollment(signed.response, urls, trust, signed.url);
    return this.join();
  }

  /** Brings the mesh up and says how far it got within `upWaitMs`. */
  private async join(): Promise<string> {
    await this.bringUp();
    const settled = (c = this.session?.control) => c?.connected === true || c?.lastError === PENDING_APPROVAL;
    await waitFor(() => settled(), this.opts.upWaitMs ?? 10_000, 50).catch(() => undefined);
    const e = this.enrollment!;
    const who = `${e.name} (${e.address})`;
    const control = this.session?.control;
    const target = control?.brokers.current;
    if (control?.connected && target) return `up: ${who}, connected to ${describeTarget(target)}`;
    if (control?.lastError === PENDING_APPROVAL)
      return `up: ${who}, enrolled; ${PENDING_APPROVAL} (it joins once approved)`;
    return `up: ${who}, not yet connected to ${e.brokerUrls.join(', ')}: ${control?.lastError ?? 'connecting'}`;
  }

  /** `up` may change the broker's URLs (keeping one: the same broker) and how it is trusted. */
  private async reconfigure(current: Enrollment, urls: string[], trust: BrokerTrust): Promise<void> {
    if (!sharesUrl(current.brokerUrls, urls)) {
      throw new UserError(
        `already enrolled with ${current.brokerUrls.join(', ')}; give --setup-key to enroll with another broker`,
      );
    }
    const same =
      urls.join() === current.brokerUrls.join() && JSON.stringify(trust) === JSON.stringify(current.trust);
    if (same) return;
    const agent = createBrokerAgent(trust); // fails on a bad CA file before anything is saved
    current.brokerUrls = urls;
    current.trust = trust;
    await this.opts.store.saveEnrollment(current);
    this.log.info({ brokers: urls }, 'broker list changed');
    this.session?.setBrokers(urls, agent);
  }

  down(): Promise<string> {
    return this.ops.run(() => this.doDown());
  }

  private async doDown(): Promise<string> {
    this.signIns.cancel('cancelled by `trellis down`');
    if (this.enrollment?.wantUp) {
      this.enrollment.wantUp = false;
      await this.opts.store.saveEnrollment(this.enrollment);
    }
    await this.leaveMesh();
    this.state = this.enrollment ? 'stopped' : 'needs-enrollment';
    return 'down: left the mesh (enrollment kept; `trellis up` to rejoin)';
  }

  /** Daemon exit: tear everything down but keep wanting to be up on next start. */
  shutdown(): Promise<void> {
    this.signIns.cancel('trellisd is stopping');
    return this.ops.run(() => this.leaveMesh());
  }

  async status(): Promise<StatusResponse> {
    const s = this.session;
    let device: WgDeviceState | null = null;
    if (this.meshUp) {
      const read = async () => {
        const d = await this.opts.backend.getState();
        await s?.observeInQueue(d); // so the path shown matches the endpoint shown
        return d;
      };
      device = await this.queue.run(read).catch(() => null);
    }
    return buildStatus({
      state: this.state,
      ...sessionStatusInputs(s, this.settings.current),
      brokerUrl: s?.control.brokers.current?.url ?? this.enrollment?.brokerUrls[0] ?? null,
      brokerUrls: this.enrollment?.brokerUrls ?? [],
      lastError: s ? s.control.lastError : this.lastError,
      interfaceName: this.opts.interfaceName,
      listenPort: this.opts.listenPort,
      publicKey: this.keys?.current.publicKey ?? null,
      backend: this.opts.backend.kind,
      device,
      ...(this.opts.guard ? { guard: this.opts.guard.status() } : {}),
      ...(this.signIns.pending ? { signIn: this.signIns.pending } : {}),
    });
  }

  private deviceBody(name: string | undefined) {
    return deviceBody(this.keys!.current.publicKey, name, this.opts.readCandidates());
  }

  private async enroll(urls: string[], setupKey: string, name: string | undefined, trust: BrokerTrust) {
    const previous = this.state;
    this.state = 'enrolling';
    this.log.info({ brokers: urls }, 'enrolling');
    try {
      const body = { ...this.deviceBody(name), setupKey };
      const agent = createBrokerAgent(trust);
      const { response, url } = await enrollWithAny(
        urls,
        agent,
        body,
        this.keys!.current.privateKey,
        this.resolveHost,
      ).finally(() => agent.destroy());
      await this.adoptEnrollment(response, urls, trust, url);
    } catch (err) {
      this.state = previous;
      this.lastError = (err as Error).message;
      throw err;
    }
  }

  /** A new enrollment replaces whatever mesh and enrollment this device had. */
  private async adoptEnrollment(res: EnrollResponse, urls: string[], trust: BrokerTrust, url: string) {
    await this.leaveMesh();
    this.enrollment = enrollmentFrom(res, urls, trust, this.keys!.current.publicKey);
    await this.opts.store.saveEnrollment(this.enrollment);
    this.lastError = null;
    this.log.info({ deviceId: res.deviceId, name: res.name, address: res.address, broker: url }, 'enrolled');
  }

  /** Starts the control connection (and the mesh from disk, which the broker's snapshot then replaces). */
  private async bringUp(): Promise<void> {
    if (this.session) return;
    this.state = 'connecting';
    const saved = await this.opts.store.loadNetmap().catch((err: Error) => {
      this.log.warn({ err: err.message }, 'ignoring unreadable saved netmap');
      return null;
    });
    const session = new MeshSession(
      { ...this.opts, gatewayPrefs: () => this.settings.current, exitNodePins: this.settings },
      {
        queue: this.queue,
        interfaceUp: () => this.meshUp,
        startInterface: async () => {
          if (this.meshUp) return;
          await this.opts.backend.start();
          this.meshUp = true;
        },
        setState: (state) => {
          this.state = state;
        },
        deviceRemoved: () => void this.ops.run(() => this.onDeviceRemoved()),
        meshError: (err) => this.meshError(err),
        keyConfirmed: (publicKey) =>
          void this.ops.run(() => this.settleKey(publicKey)).catch((err: Error) => this.meshError(err)),
      },
      this.enrollment!,
      this.keys!.current,
      saved,
    );
    this.session = session;
    if (this.keys!.pending) session.control.setFallbackKey(this.keys!.pending);
    await session.start();
  }

  /**
   * `trellis rotate-key`: a new key, pending on disk before the broker hears of it, signed by the
   * current one. Once the broker answers, it becomes the device key and the mesh starts over with
   * it (WireGuard, control connection). Without an answer the pending key stays, and the next
   * connection settles which key the broker holds (DeviceKeys).
   */
  rotateKey(): Promise<RotateKeyResponse> {
    return this.ops.run(() => this.doRotateKey());
  }

  private async doRotateKey(): Promise<RotateKeyResponse> {
    const keys = this.keys!;
    const enrollment = this.enrollment;
    const control = this.session?.control;
    if (!enrollment || !control?.connected)
      throw new UserError('not connected to the broker: rotating the key needs it (`trellis up`)');
    if (keys.pending) throw new UserError('an earlier key rotation is still unresolved; try again later');
    const previousKey = keys.current.publicKey;
    this.log.info({ previousKey }, 'rotating the device key');
    await keys.rotate(enrollment, control);
    await this.adoptPendingKey();
    return { ok: true, previousKey, publicKey: keys.current.publicKey };
  }

  /** A connection under `publicKey` was accepted: a pending key is known to be taken or not now. */
  private async settleKey(publicKey: string): Promise<void> {
    if (await this.keys!.settle(publicKey, this.session?.control, this.log)) await this.adoptPendingKey();
  }

  /** The broker holds the pending key: it becomes the device key, and the mesh starts over with it. */
  private async adoptPendingKey(): Promise<void> {
    const key = await this.keys!.commit();
    const enrollment = this.enrollment;
    if (enrollment) {
      enrollment.publicKey = key.publicKey;
      await this.opts.store.saveEnrollment(enrollment);
    }
    this.log.info({ publicKey: key.publicKey }, 'device key rotated');
    const session = this.session;
    if (!session) return;
    // Its connection, path logic and WireGuard use the old key; the saved netmap is applied again.
    this.session = null;
    await session.close();
    await this.queue.run(async () => {
      if (this.meshUp) await this.opts.backend.apply({ privateKey: key.privateKey, peers: [] });
    });
    await this.bringUp();
  }

  private async leaveMesh(): Promise<void> {
    const session = this.session;
    this.session = null;
    const prefix = (await session?.close()) ?? null;
    await this.queue.run(async () => {
      if (!this.meshUp) return;
      await this.opts.network.remove(this.opts.interfaceName, prefix);
      await this.opts.backend.stop();
      // Its rules match the interface just removed: without it they guard nothing.
      await this.opts.guard?.remove();
      this.meshUp = false;
      this.log.info({ interface: this.opts.interfaceName }, 'mesh removed');
    });
  }

  private async onDeviceRemoved(): Promise<void> {
    this.log.warn('the broker removed this device; leaving the mesh');
    await this.leaveMesh().catch((err: Error) => this.meshError(err));
    await this.opts.store.forgetEnrollment();
    this.enrollment = null;
    this.state = 'needs-enrollment';
    this.lastError = 'device removed by the broker: sign in again (`trellis up --broker URL`)';
  }

  private meshError(err: Error): void {
    this.lastError = `applying the mesh failed: ${err.message}`;
    this.log.error({ err: err.message }, 'applying the mesh failed');
  }
}
