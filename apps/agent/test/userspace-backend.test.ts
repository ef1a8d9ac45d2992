import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import pino from 'pino';
import { LinuxNetworkConfigurator } from '../src/platform/linux';
import { NetnsCommandRunner } from '../src/util/command-runner';
import { waitFor } from '../src/util/wait';
import { diffWireGuardConfig } from '../src/wireguard/config-diff';
import { KernelBackend } from '../src/wireguard/kernel';
import { clampPrivateKey } from '../src/wireguard/keys';
import { isEmptyUpdate } from '../src/wireguard/types';
import { uapiSocketPath } from '../src/wireguard/uapi-socket';
import { UserspaceBackend } from '../src/wireguard/userspace';
import { WgToolClient } from '../src/wireguard/wg-tool';
import { TestNetns } from './helpers/netns';

jest.setTimeout(60_000);

/** Real wireguard-go inside a namespace this test creates and deletes. */
describe('userspace WireGuard backend (real wireguard-go in a netns)', () => {
  const ns = TestNetns.create(`trl-agt-${process.pid}`);
  const runner = new NetnsCommandRunner(ns.name);
  const ifname = `trlu${process.pid % 100000}`;
  const logger = pino({ level: 'silent' });
  const pidFile = join(mkdtempSync(join(tmpdir(), 'trellis-wg-')), 'wireguard-go.pid');
  const backend = new UserspaceBackend({
    interfaceName: ifname,
    runner,
    logger,
    pidFile,
    restartDelayMs: 50,
  });
  const self = generateKeyPair();
  const peerA = generateKeyPair().publicKey;
  const peerB = generateKeyPair().publicKey;
  const desired = {
    privateKey: self.privateKey,
    listenPort: 51999,
    peers: [
      { publicKey: peerA, allowedIps: ['100.64.0.2/32'], endpoint: '10.77.0.2:51820' },
      { publicKey: peerB, allowedIps: ['100.64.0.3/32'] },
    ],
  };

  afterAll(async () => {
    await backend.stop().catch(() => undefined);
    ns.delete();
  });

  it('creates the interface, applies peers, reads them back, and a second apply is empty', async () => {
    await backend.start();
    expect(ns.exec('ip', ['link', 'show', ifname])).toContain(ifname);
    const update = diffWireGuardConfig(desired, await backend.getState());
    await backend.apply(update);
    const state = await backend.getState();
    expect(state.privateKey).toBe(clampPrivateKey(self.privateKey));
    expect(state.listenPort).toBe(51999);
    const byKey = new Map(state.peers.map((p) => [p.publicKey, p]));
    expect(byKey.get(peerA)).toMatchObject({
      endpoint: '10.77.0.2:51820',
      allowedIps: ['100.64.0.2/32'],
      persistentKeepalive: 25,
    });
    expect(byKey.get(peerB)).toMatchObject({
      endpoint: null,
      allowedIps: ['100.64.0.3/32'],
      persistentKeepalive: 0,
    });
    expect(isEmptyUpdate(diffWireGuardConfig(desired, state))).toBe(true);
  });

  it('agrees with `wg show dump` (the kernel backend’s reader) and `wg set` (its writer)', async () => {
    const wg = new WgToolClient(runner, ifname);
    const viaUapi = await backend.getState();
    const viaWg = await wg.get();
    expect(viaWg.privateKey).toBe(viaUapi.privateKey);
    expect(viaWg.listenPort).toBe(viaUapi.listenPort);
    const byKey = (a: { publicKey: string }, b: { publicKey: string }) =>
      a.publicKey.localeCompare(b.publicKey);
    expect([...viaWg.peers].sort(byKey)).toEqual([...viaUapi.peers].sort(byKey));
    // Remove B and re-key A's allowed IPs through `wg set`; UAPI must see exactly that.
    await wg.set({
      peers: [
        { publicKey: peerB, remove: true },
        { publicKey: peerA, allowedIps: ['100.64.0.2/32', '10.5.0.0/16'] },
      ],
    });
    const after = await backend.getState();
    expect(after.peers.map((p) => p.publicKey)).toEqual([peerA]);
    expect(after.peers[0]!.allowedIps.sort()).toEqual(['10.5.0.0/16', '100.64.0.2/32']);
    // The diff puts it back.
    await backend.apply(diffWireGuardConfig(desired, after));
    expect(isEmptyUpdate(diffWireGuardConfig(desired, await backend.getState()))).toBe(true);
  });

  it('configures address, link and overlay route idempotently', async () => {
    const net = new LinuxNetworkConfigurator(runner);
    await net.apply(ifname, '100.64.0.1', '100.64.0.0/10');
    await net.apply(ifname, '100.64.0.1', '100.64.0.0/10');
    const addrs = ns.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', ifname]);
    expect(addrs.match(/inet /g)).toHaveLength(1);
    expect(addrs).toContain('100.64.0.1/32');
    expect(ns.exec('ip', ['link', 'show', ifname])).toMatch(/[<,]UP[,>]/);
    expect(ns.exec('ip', ['route', 'show', 'dev', ifname]).trim()).toMatch(/^100\.64\.0\.0\/10 /);
    // Re-addressing replaces the old address.
    await net.apply(ifname, '100.64.0.7', '100.64.0.0/10');
    const after = ns.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', ifname]);
    expect(after).toContain('100.64.0.7/32');
    expect(after).not.toContain('100.64.0.1/32');
  });

  it('restarts wireguard-go when it dies and tells listeners to re-apply', async () => {
    let recreated = 0;
    backend.onRecreated(() => recreated++);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(() => recreated === 1, 30_000, 50);
    const state = await backend.getState();
    expect(state.peers).toEqual([]); // a fresh device: the agent re-applies on this signal
    const newPid = Number(readFileSync(pidFile, 'utf8'));
    expect(newPid).not.toBe(pid);
  });

  it('starts cleanly over a crashed run (orphaned wireguard-go, its socket and interface)', async () => {
    await backend.stop();
    // What a SIGKILLed daemon leaves: its wireguard-go still running, recorded in the pid file.
    const orphan = runner.spawn('wireguard-go', ['-f', ifname]);
    writeFileSync(pidFile, `${orphan.pid}\n`);
    await waitFor(() => existsSync(uapiSocketPath(ifname)), 10_000, 50);
    const again = new UserspaceBackend({ interfaceName: ifname, runner, logger, pidFile });
    await again.start();
    expect(orphan.exitCode !== null || orphan.signalCode !== null).toBe(true);
    expect((await again.getState()).peers).toEqual([]);
    await again.stop();
    expect(existsSync(uapiSocketPath(ifname))).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    expect(() => ns.exec('ip', ['link', 'show', ifname])).toThrow();
  });

  it('reports that this machine has no kernel module, so auto falls back', async () => {
    const hasKernel = await KernelBackend.available(runner);
    expect(typeof hasKernel).toBe('boolean');
    // When the module is absent (this lab), creating a kernel interface must fail loudly.
    if (!hasKernel) {
      await expect(new KernelBackend(`trlk${process.pid % 10000}`, runner, logger).start()).rejects.toThrow(
        /ip link add/,
      );
    }
  });
});
