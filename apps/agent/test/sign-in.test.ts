import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent';
import { STATE_FILES } from '../src/state/state-store';
import { waitFor } from '../src/util/wait';
import { BrokerDouble } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { newTestAgent } from './helpers/test-agent';

jest.setTimeout(60_000);

const cert = makeSelfSignedCert();

describe('signing in once (RFC 8628) from the agent', () => {
  let broker: BrokerDouble;
  let url: string;
  let dir: string;
  let agent: Agent;
  const logs: string[] = [];

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    url = `https://127.0.0.1:${await broker.listen(0)}`;
    dir = mkdtempSync(join(tmpdir(), 'trl-signin-'));
    logs.length = 0;
    ({ agent } = newTestAgent(dir, logs, { interfaceName: 'trlsign0', candidates: ['192.168.1.9:51820'] }));
    await agent.start();
  });
  afterEach(async () => {
    await agent.shutdown();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const up = () =>
    agent.up({ op: 'up', brokers: [url], name: 'laptop', trust: { fingerprint: cert.fingerprint } });

  it('`up` without a setup key prints the code; once approved the device is enrolled, saved and connected', async () => {
    const first = await up();
    expect(first.signIn).toMatchObject({
      broker: `${url}/`,
      verificationUri: `${url}/device`,
      userCode: broker.signIns.latest().userCode,
    });
    const status = await agent.status();
    expect(status.state).toBe('signing-in');
    expect(status.signIn?.userCode).toBe(first.signIn!.userCode);
    // A second `up` meanwhile shows the same code instead of starting over.
    expect((await up()).signIn?.userCode).toBe(first.signIn!.userCode);
    expect(broker.signIns.requests).toHaveLength(1);
    expect(broker.signIns.latest().request).toMatchObject({
      name: 'laptop',
      endpoints: ['192.168.1.9:51820'],
    });

    const waiting = agent.waitForSignIn();
    await waitFor(() => broker.signIns.latest().polls.length >= 2, 10_000, 20);
    broker.signIns.approve();
    expect(await waiting).toMatch(/^up: laptop \(100\.64\.0\.1\), connected/);
    const saved = JSON.parse(readFileSync(join(dir, STATE_FILES.enrollment), 'utf8'));
    expect(saved).toMatchObject({ name: 'laptop', brokerUrls: [`${url}/`], wantUp: true });
    const after = await agent.status();
    expect(after.state).toBe('connected');
    expect(after.signIn).toBeUndefined();
  });

  it('denied: the wait says so, the device stays unenrolled and says why', async () => {
    await up();
    const waiting = agent.waitForSignIn();
    broker.signIns.deny();
    await expect(waiting).rejects.toThrow('the sign-in was denied');
    const status = await agent.status();
    expect(status.state).toBe('needs-enrollment');
    expect(status.broker.lastError).toBe('the sign-in was denied');
  });

  it('slow_down makes the agent wait 5 s longer between polls', async () => {
    broker.signIns.slowDowns = 1;
    await up();
    await waitFor(() => broker.signIns.latest().polls.length >= 1, 10_000, 20);
    broker.signIns.approve();
    await agent.waitForSignIn();
    // interval 1 s + 5 s: the next poll came no sooner than 6 s after the one answered slow_down.
    const [slowedDown, next] = broker.signIns.latest().polls;
    expect(next! - slowedDown!).toBeGreaterThanOrEqual(5_990);
  });

  it('`down` cancels a pending sign-in; a later `up` starts a new one', async () => {
    await up();
    const waiting = agent.waitForSignIn();
    await agent.down();
    await expect(waiting).rejects.toThrow('cancelled by `trellis down`');
    expect((await agent.status()).state).toBe('needs-enrollment');
    const again = await up();
    expect(broker.signIns.requests).toHaveLength(2);
    expect(again.signIn?.userCode).toBe(broker.signIns.latest().userCode);
  });

  it('a grant already on its way when `down` cancels is dropped: nothing saved, nothing connected', async () => {
    await up();
    const waiting = agent.waitForSignIn();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inFlight!: () => void;
    const grantInFlight = new Promise<void>((resolve) => {
      inFlight = resolve;
    });
    broker.signInGate = async () => {
      if (broker.signIns.latest().state !== 'spent') return;
      inFlight();
      await held;
    };
    broker.signIns.approve();
    await grantInFlight;
    const sent = broker.signInAnswers;
    await agent.down();
    release();
    await expect(waiting).rejects.toThrow('cancelled by `trellis down`');
    // The agent has read the grant and let it go.
    await waitFor(() => broker.signInAnswers > sent, 10_000, 10);
    await agent.status();
    expect(existsSync(join(dir, STATE_FILES.enrollment))).toBe(false);
    expect((await agent.status()).state).toBe('needs-enrollment');
    expect(broker.authed).toBe(0);
  });

  it('where an admin must approve new devices, `up` says so at once; the device joins by itself once approved', async () => {
    broker.requireApproval = true;
    await up();
    const waiting = agent.waitForSignIn();
    broker.signIns.approve();
    expect(await waiting).toBe(
      'up: laptop (100.64.0.1), enrolled; waiting for an admin to approve this device in the dashboard (it joins once approved)',
    );
    const status = await agent.status();
    expect(status.state).not.toBe('connected');
    expect(status.broker.lastError).toBe('waiting for an admin to approve this device in the dashboard');
    expect(broker.authed).toBe(0);
    broker.pendingApproval.clear();
    await waitFor(async () => (await agent.status()).state === 'connected', 40_000, 100);
    expect((await agent.status()).broker.lastError).toBeNull();
  });

  it('`up` with nothing to go on asks for a broker; the broker refusing the start is an error at once', async () => {
    await expect(agent.up({ op: 'up' })).rejects.toThrow('run `trellis up --broker URL` to sign in');
    await broker.close();
    await expect(up()).rejects.toThrow(/ECONNREFUSED|not reachable|refused/i);
  });
});
