import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { WgConfigUpdate, WgDeviceState, WgPeerState } from './types';
import { assertWritableUpdate } from './update-check';

/**
 * Configuration through the `wg` tool: the way to reach the kernel module without netlink code.
 * `wg` also speaks UAPI to wireguard-go, which is how this is tested without the kernel module.
 */
export class WgToolClient {
  constructor(
    private readonly runner: CommandRunner,
    private readonly interfaceName: string,
  ) {}

  async get(): Promise<WgDeviceState> {
    return parseWgDump(await runChecked(this.runner, 'wg', ['show', this.interfaceName, 'dump']));
  }

  async set(update: WgConfigUpdate): Promise<void> {
    assertWritableUpdate(update);
    const args = ['set', this.interfaceName];
    let keyFile: string | null = null;
    if (update.privateKey !== undefined) {
      // `wg` only reads private keys from a file; a 0600 file that lives for one command.
      keyFile = join(tmpdir(), `trellis-wgkey-${randomBytes(8).toString('hex')}`);
      writeFileSync(keyFile, `${update.privateKey}\n`, { mode: 0o600 });
      args.push('private-key', keyFile);
    }
    if (update.listenPort !== undefined) args.push('listen-port', String(update.listenPort));
    if (update.fwmark !== undefined) {
      args.push('fwmark', update.fwmark === 0 ? 'off' : `0x${update.fwmark.toString(16)}`);
    }
    for (const p of update.peers) {
      args.push('peer', p.publicKey);
      if (p.remove) {
        args.push('remove');
        continue;
      }
      if (p.endpoint !== undefined) args.push('endpoint', p.endpoint);
      if (p.persistentKeepalive !== undefined) {
        args.push(
          'persistent-keepalive',
          p.persistentKeepalive === 0 ? 'off' : String(p.persistentKeepalive),
        );
      }
      if (p.allowedIps !== undefined) args.push('allowed-ips', p.allowedIps.join(','));
    }
    try {
      await runChecked(this.runner, 'wg', args);
    } finally {
      if (keyFile) await rm(keyFile, { force: true });
    }
  }
}

/** Parses `wg show IF dump`: a device line, then one tab-separated line per peer. */
export function parseWgDump(text: string): WgDeviceState {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const head = lines[0]?.split('\t');
  if (!head || head.length < 3) throw new Error('malformed wg dump: missing device line');
  const device: WgDeviceState = {
    privateKey: head[0] === '(none)' ? null : head[0]!,
    listenPort: Number(head[2]),
    // `off`, or the mark in hex (`0x7472`) or decimal depending on the wg version.
    fwmark: head[3] === undefined || head[3] === 'off' ? 0 : Number(head[3]),
    peers: [],
  };
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    if (f.length < 8) throw new Error(`malformed wg dump peer line: ${line}`);
    const peer: WgPeerState = {
      publicKey: f[0]!,
      endpoint: f[2] === '(none)' ? null : f[2]!,
      allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
      lastHandshakeSec: Number(f[4]),
      rxBytes: Number(f[5]),
      txBytes: Number(f[6]),
      persistentKeepalive: f[7] === 'off' ? 0 : Number(f[7]),
    };
    device.peers.push(peer);
  }
  return device;
}
