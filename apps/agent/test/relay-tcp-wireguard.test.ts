import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import { RELAY_TCP_BATCH_PROTOCOL } from '@trellis/proto';
import pino from 'pino';
import { LinuxNetworkConfigurator } from '../src/platform/linux';
import { NetnsCommandRunner } from '../src/util/command-runner';
import { waitFor } from '../src/util/wait';
import { UserspaceBackend } from '../src/wireguard/userspace';
import { bundle } from './helpers/build-bins';
import { TestNetns } from './helpers/netns';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { TlsRelayDouble } from './helpers/tls-relay-double';

jest.setTimeout(120_000);

/**
 * Both peers' only path is the relay over TCP: real wireguard-go in two namespaces with no link
 * between them, each pointed at its own RelayTcpProxy (run inside its namespace), both proxies on
 * one allocation of a TLS relay double in this process (reached through a unix socket that a
 * forwarder in each namespace exposes as 127.0.0.1:8444). The double batches as a current relay does
 * (relay-tcp-frames.ts); relay-tcp-proxy.test.ts covers an older, per-packet one.
 */
describe('TCP fallback with real wireguard-go', () => {
  const tag = String(process.pid % 10000);
  const work = mkdtempSync(join(tmpdir(), 'trl-agt-relay-'));
  const cert = makeSelfSignedCert('trellis-test-relay');
  const relay = new TlsRelayDouble(cert, 'pair', true);
  const relaySock = join(work, 'relay.sock');
  const allocationId = '7e57a110-0000-4000-8000-000000000001';
  const logger = pino({ level: 'silent' });
  const children: ChildProcess[] = [];
  const backends: UserspaceBackend[] = [];
  let nsA: TestNetns;
  let nsB: TestNetns;

  /** Runs `args` with node inside `ns` and resolves to the first line it prints. */
  function runIn(ns: TestNetns, args: string[]): Promise<string> {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim().split('\n')[0]!));
    });
  }

  /** Asynchronous: the relay double runs in this process and must keep forwarding meanwhile. */
  function pings(ns: TestNetns, address: string): Promise<boolean> {
    return new Promise((resolve) =>
      execFile('ip', ['netns', 'exec', ns.name, 'ping', '-c', '1', '-W', '1', address], (err) =>
        resolve(err === null),
      ),
    );
  }

  beforeAll(async () => {
    nsA = TestNetns.create(`trl-rly-${tag}-a`);
    nsB = TestNetns.create(`trl-rly-${tag}-b`);
    await relay.start(relaySock);
  });

  afterAll(async () => {
    for (const b of backends) await b.stop().catch(() => undefined);
    for (const c of children) c.kill('SIGTERM');
    nsA?.delete();
    nsB?.delete();
    await relay.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('carries pings between two peers whose only path is the relay over TCP', async () => {
    const [proxyMain] = bundle([join(__dirname, 'helpers', 'relay-proxy-main.ts')]);
    const forwarder = join(__dirname, 'helpers', 'tcp-to-unix.js');
    const sides = [
      { ns: nsA, ifname: `trra${tag}`, keys: generateKeyPair(), address: '100.64.9.1' },
      { ns: nsB, ifname: `trrb${tag}`, keys: generateKeyPair(), address: '100.64.9.2' },
    ];
    for (const [i, side] of sides.entries()) {
      const peer = sides[1 - i]!;
      await runIn(side.ns, [forwarder, '8444', relaySock]);
      const endpoint = await runIn(side.ns, [
        proxyMain!,
        'wss://127.0.0.1:8444',
        cert.fingerprint,
        allocationId,
        '51820',
      ]);
      expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
      const runner = new NetnsCommandRunner(side.ns.name);
      const backend = new UserspaceBackend({
        interfaceName: side.ifname,
        runner,
        logger,
        pidFile: join(work, `${side.ifname}.pid`),
      });
      backends.push(backend);
      await backend.start();
      await backend.apply({
        privateKey: side.keys.privateKey,
        listenPort: 51820,
        peers: [
          {
            publicKey: peer.keys.publicKey,
            endpoint,
            allowedIps: [`${peer.address}/32`],
            persistentKeepalive: 25,
          },
        ],
      });
      await new LinuxNetworkConfigurator(runner).apply(side.ifname, side.address, '100.64.0.0/10');
    }
    await waitFor(() => pings(nsA, '100.64.9.2'), 60_000, 200);
    expect(await pings(nsB, '100.64.9.1')).toBe(true);
    const state = await backends[0]!.getState();
    // WireGuard kept the loopback proxy as the peer's endpoint, and a handshake went through it.
    expect(state.peers[0]!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(state.peers[0]!.lastHandshakeSec).toBeGreaterThan(0);
    expect(relay.frames.length).toBeGreaterThan(0);
    expect(relay.protocols).toEqual([RELAY_TCP_BATCH_PROTOCOL, RELAY_TCP_BATCH_PROTOCOL]);
  });
});
