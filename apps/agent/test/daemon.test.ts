import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StatusResponse } from '@trellis/proto';
import { waitFor } from '../src/util/wait';
import { BrokerDouble } from './helpers/broker-double';
import { buildBins, standaloneCli } from './helpers/build-bins';
import { DaemonProcess } from './helpers/daemon-process';
import { linkNamespaces, TestNetns } from './helpers/netns';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

jest.setTimeout(180_000);

/**
 * Two real daemons (wireguard-go) in two namespaces joined by a veth pair; the broker double runs
 * in this process on a unix socket that a small forwarder inside each namespace exposes as
 * https://127.0.0.1:8443. Everything goes through the real CLI and the real control socket.
 */
describe('trellisd + trellis in two namespaces', () => {
  const tag = String(process.pid % 10000);
  const work = mkdtempSync(join(tmpdir(), 'trl-agt-'));
  const cert = makeSelfSignedCert();
  const broker = new BrokerDouble(cert);
  const brokerSock = join(work, 'broker.sock');
  const BROKER_URL = 'https://127.0.0.1:8443';
  let nsA: TestNetns;
  let nsB: TestNetns;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let bins: { daemon: string; cli: string };
  const forwarders: ChildProcess[] = [];

  async function forward(ns: TestNetns): Promise<void> {
    const fwd = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
        process.execPath,
        join(__dirname, 'helpers', 'tcp-to-unix.js'),
        '8443',
        brokerSock,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    forwarders.push(fwd);
    await new Promise<void>((resolve) => fwd.stdout!.once('data', () => resolve()));
  }

  async function status(d: DaemonProcess): Promise<StatusResponse> {
    const r = await d.cli(['status', '--json']);
    if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as StatusResponse;
  }

  async function pings(ns: TestNetns, address: string): Promise<boolean> {
    try {
      ns.exec('ping', ['-c', '1', '-W', '1', address]);
      return true;
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    bins = buildBins();
    nsA = TestNetns.create(`trl-agt-${tag}-a`);
    nsB = TestNetns.create(`trl-agt-${tag}-b`);
    linkNamespaces(nsA, nsB, tag, '10.231.7');
    await broker.listen(brokerSock);
    await forward(nsA);
    await forward(nsB);
    const common = ['--listen-port', '51820', '--wireguard', 'userspace'];
    a = new DaemonProcess(nsA.name, bins.daemon, bins.cli, join(work, 'a'), [
      '--interface',
      `trla${tag}`,
      ...common,
    ]);
    b = new DaemonProcess(nsB.name, bins.daemon, bins.cli, join(work, 'b'), [
      '--interface',
      `trlb${tag}`,
      ...common,
    ]);
    await a.start();
    await b.start();
  });

  afterAll(async () => {
    for (const d of [a, b]) await d?.stop().catch(() => d.kill());
    for (const f of forwarders) f.kill('SIGTERM');
    await broker.close();
    nsA?.delete();
    nsB?.delete();
    rmSync(work, { recursive: true, force: true });
  });

  it('serves status on a 0600 socket before enrollment', async () => {
    expect(statSync(a.socket).mode & 0o777).toBe(0o600);
    const s = await status(a);
    expect(s.state).toBe('needs-enrollment');
    expect(s.interface).toMatchObject({ name: `trla${tag}`, listenPort: 51820, backend: 'userspace' });
    expect(s.peers).toEqual([]);
  });

  it('explains failures: bad URL, wrong pin, rejected setup key, no daemon', async () => {
    const badUrl = await a.cli(['up', '--broker', 'http://127.0.0.1:8443', '--setup-key', 'whatever-key']);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toContain('bad broker URL');
    const other = makeSelfSignedCert('impostor');
    const badPin = await a.cli([
      'up',
      '--broker',
      BROKER_URL,
      '--setup-key',
      'test-setup-key-0001',
      '--fingerprint',
      other.fingerprint,
    ]);
    expect(badPin.code).toBe(1);
    expect(badPin.stderr).toContain('TLS pin mismatch');
    const rejected = await a.cli([
      'up',
      '--broker',
      BROKER_URL,
      '--setup-key',
      'wrong-setup-key',
      '--fingerprint',
      cert.fingerprint,
    ]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain(
      'enrollment rejected by the broker (401): setup key is invalid, expired or revoked',
    );
    const unreachable = await a.cli([
      'up',
      '--broker',
      'https://127.0.0.1:8444',
      '--setup-key',
      'test-setup-key-0001',
      '--fingerprint',
      cert.fingerprint,
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('broker unreachable at https://127.0.0.1:8444/ (ECONNREFUSED)');
    const noDaemon = await a.cli(['--socket', join(work, 'nope.sock'), 'status']);
    expect(noDaemon.code).toBe(1);
    expect(noDaemon.stderr).toContain('trellisd is not running');
    // An unprivileged user cannot reach the 0600 socket in the 0700 state directory.
    const nobodyCli = standaloneCli();
    const asNobody = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          nobodyCli,
          '--socket',
          a.socket,
          'status',
        ],
        (err, _out, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
    rmSync(dirname(nobodyCli), { recursive: true, force: true });
    expect(asNobody.code).toBe(1);
    expect(asNobody.stderr).toContain(`permission denied on ${a.socket}: run trellis as root`);
    expect(broker.devices.size).toBe(0);
  });

  it('enrolls both, builds the mesh, and the two ping each other over overlay addresses', async () => {
    const upA = await a.cli([
      'up',
      '--broker',
      BROKER_URL,
      '--setup-key',
      'test-setup-key-0001',
      '--name',
      'alpha',
      '--fingerprint',
      cert.fingerprint,
    ]);
    expect(upA.stderr).toBe('');
    expect(upA.stdout).toContain('up: alpha (100.64.0.1), connected to https://127.0.0.1:8443/');
    const upB = await b.cli([
      'up',
      '--broker',
      BROKER_URL,
      '--setup-key',
      'test-setup-key-0001',
      '--name',
      'beta',
      '--ca-file',
      cert.certFile,
    ]);
    expect(upB.stdout).toContain('up: beta (100.64.0.2)');

    await waitFor(
      async () => {
        const s = await status(a);
        return s.peers.length === 1 && s.peers[0]!.candidates.includes('10.231.7.2:51820');
      },
      60_000,
      200,
    );
    await waitFor(() => pings(nsA, '100.64.0.2'), 60_000, 200);
    await waitFor(() => pings(nsB, '100.64.0.1'), 60_000, 200);

    const s = await status(a);
    expect(s.state).toBe('connected');
    expect(s.netmapSource).toBe('broker');
    expect(s.self).toMatchObject({ name: 'alpha', address: '100.64.0.1' });
    expect(s.broker).toEqual({
      url: 'https://127.0.0.1:8443/',
      connected: true,
      lastError: null,
      urls: ['https://127.0.0.1:8443/'],
      address: null,
    });
    const peer = s.peers[0]!;
    expect(peer).toMatchObject({
      name: 'beta',
      address: '100.64.0.2',
      endpoint: '10.231.7.2:51820',
      online: true,
    });
    expect(peer.lastHandshake).not.toBeNull();
    expect(peer.rxBytes).toBeGreaterThan(0);
    expect(peer.txBytes).toBeGreaterThan(0);
    // The route and address are in place inside the namespace.
    expect(nsA.exec('ip', ['route', 'show', 'dev', `trla${tag}`])).toContain('100.64.0.0/10');

    const human = await a.cli(['status']);
    expect(human.stdout).toMatch(/broker:\s+https:\/\/127\.0\.0\.1:8443\/\s+connected/);
    expect(human.stdout).toMatch(
      /beta\s+beta\.acme\.trellis\.test\s+100\.64\.0\.2\s+10\.231\.7\.2:51820\s+10\.231\.7\.2:51820\s+\d+s ago\s+\d/,
    );
    expect(human.stdout).toContain('dns:        acme.trellis.test answered at 100.64.0.1:53 (--dns stub:');
    expect(a.logged('mesh applied')).toBe(true);
  });

  it('re-applying an unchanged peer changes nothing in WireGuard', async () => {
    const alpha = [...broker.devices.values()].find((d) => d.name === 'alpha')!;
    const beta = [...broker.devices.values()].find((d) => d.name === 'beta')!;
    const before = nsA
      .exec('wg', ['show', `trla${tag}`, 'dump'])
      .split('\n')[1]!
      .split('\t')
      .slice(0, 4);
    const from = a.lines.length;
    broker.sendDelta(alpha.id, { upsert: [broker.peerOf(beta)], remove: [] });
    await waitFor(() => a.logged('mesh applied', from), 30_000, 50);
    const line = JSON.parse(a.lines.slice(from).find((l) => l.includes('"msg":"mesh applied"'))!) as {
      source: string;
      changes: number;
    };
    expect(line).toMatchObject({ source: 'delta', changes: 0 });
    const after = nsA
      .exec('wg', ['show', `trla${tag}`, 'dump'])
      .split('\n')[1]!
      .split('\t')
      .slice(0, 4);
    expect(after).toEqual(before); // key, psk, endpoint, allowed ips
  });

  it('reports a new local address as a candidate, and the peer learns it', async () => {
    nsA.exec('ip', ['addr', 'add', '10.231.8.1/24', 'dev', `va${tag}`]);
    await waitFor(
      () => broker.endpointReports.some((r) => r.endpoints.includes('10.231.8.1:51820')),
      30_000,
      100,
    );
    await waitFor(
      async () => {
        const s = await status(b);
        return s.peers[0]?.candidates.includes('10.231.8.1:51820') === true;
      },
      30_000,
      200,
    );
    // The endpoint in use stays: it is still one of alpha's candidates.
    expect((await status(b)).peers[0]!.endpoint).toBe('10.231.7.1:51820');
  });

  it('survives a broker outage, and a restart with the broker down comes back from disk', async () => {
    await broker.close();
    expect(await a.stop()).toBe(0);
    // Clean shutdown removed the interface, its route and the socket.
    expect(() => nsA.exec('ip', ['link', 'show', `trla${tag}`])).toThrow();
    expect(existsSync(a.socket)).toBe(false);
    await a.start();
    const s = await status(a);
    expect(s.netmapSource).toBe('disk');
    expect(s.state).toBe('offline');
    expect(s.broker.connected).toBe(false);
    await waitFor(() => pings(nsA, '100.64.0.2'), 60_000, 200);

    // The broker returns: A reconnects by itself and the netmap is live again.
    await broker.listen(brokerSock);
    await waitFor(async () => (await status(a)).netmapSource === 'broker', 90_000, 250);
    expect((await status(a)).state).toBe('connected');
  });

  it('recovers from a crash (SIGKILL) without manual cleanup', async () => {
    a.kill();
    await waitFor(() => a.exitCode !== null, 30_000, 25);
    await a.start(); // stale socket, wireguard-go and interface are cleared at start
    await waitFor(() => pings(nsA, '100.64.0.2'), 60_000, 200);
  });

  it('down leaves the mesh and keeps the enrollment; up rejoins', async () => {
    const down = await a.cli(['down']);
    expect(down.stdout).toContain('down: left the mesh');
    expect(() => nsA.exec('ip', ['link', 'show', `trla${tag}`])).toThrow();
    const s = await status(a);
    expect(s.state).toBe('stopped');
    expect(s.peers).toEqual([]);
    const up = await a.cli(['up']);
    expect(up.stdout).toContain('up: alpha (100.64.0.1), connected');
    await waitFor(() => pings(nsA, '100.64.0.2'), 60_000, 200);
  });

  it('rotate-key: alpha takes a key signed by its old one; beta accepts it against its pin; they still ping', async () => {
    const oldKey = (await status(a)).interface.publicKey!;
    const rotated = await a.cli(['rotate-key']);
    expect(rotated.stderr).toBe('');
    const fp = '([0-9a-f]{2}:){7}[0-9a-f]{2}';
    const shown = rotated.stdout.match(new RegExp(`old: (\\S+) \\(${fp}\\)\\n\\s+new: (\\S+) \\(${fp}\\)`));
    expect(shown?.[1]).toBe(oldKey);
    const newKey = shown![3]!;
    expect(newKey).not.toBe(oldKey);
    await waitFor(async () => (await status(a)).broker.connected, 30_000, 200);
    expect(broker.hellos.at(-1)?.publicKey).toBe(newKey);
    expect((await status(a)).interface.publicKey).toBe(newKey);
    expect((await a.cli(['status'])).stdout).toContain(`key ${newKey}`);
    expect(nsA.exec('wg', ['show', `trla${tag}`, 'public-key']).trim()).toBe(newKey);

    await waitFor(async () => (await status(b)).peers[0]?.publicKey === newKey, 30_000, 200);
    const guard = (await status(b)).guard!;
    expect(guard.refused).toEqual([]);
    expect(guard.keyChanges).toContainEqual(
      expect.objectContaining({ name: 'alpha', kind: 'rotated', previousKey: oldKey, key: newKey }),
    );
    expect((await b.cli(['status'])).stdout).toMatch(/key change: alpha \(100\.64\.0\.1\) rotated/);
    await waitFor(() => nsB.exec('wg', ['show', `trlb${tag}`, 'peers']).trim() === newKey, 30_000, 200);
    await waitFor(() => pings(nsA, '100.64.0.2'), 60_000, 200);
    await waitFor(() => pings(nsB, '100.64.0.1'), 60_000, 200);
  });

  it('takes several broker URLs without enrolling again, skips a dead one and keeps them across a restart', async () => {
    const dead = 'https://127.0.0.1:8444/';
    const elsewhere = await a.cli(['up', '--broker', 'https://127.0.0.1:9999']);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain('already enrolled with https://127.0.0.1:8443/; give --setup-key');
    const up = await a.cli(['up', '--broker', `${dead},${BROKER_URL}`]);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('up: alpha (100.64.0.1), connected to https://127.0.0.1:8443/');
    const s = await status(a);
    expect(s.broker).toMatchObject({
      url: 'https://127.0.0.1:8443/',
      connected: true,
      urls: [dead, `${BROKER_URL}/`],
    });
    expect((await a.cli(['status'])).stdout).toContain(`brokers:    ${dead}, ${BROKER_URL}/`);
    a.kill();
    await waitFor(() => a.exitCode !== null, 30_000, 25);
    await a.start();
    await waitFor(async () => (await status(a)).broker.connected, 30_000, 200);
    expect((await status(a)).broker.urls).toEqual([dead, `${BROKER_URL}/`]);
  });

  it('a device removed by the broker tears down and needs enrollment; its peer forgets it', async () => {
    const beta = [...broker.devices.values()].find((d) => d.name === 'beta')!;
    broker.removeDevice(beta.id);
    await waitFor(async () => (await status(b)).state === 'needs-enrollment', 30_000, 200);
    expect(() => nsB.exec('ip', ['link', 'show', `trlb${tag}`])).toThrow();
    await waitFor(async () => (await status(a)).peers.length === 0, 30_000, 200);
    const dump = nsA.exec('wg', ['show', `trla${tag}`, 'peers']);
    expect(dump.trim()).toBe('');
  });
});
