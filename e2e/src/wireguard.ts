import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './exec';
import type { Lab } from './lab';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';
import { WG_SOCKET_DIR } from './sweep';
import { waitFor } from './wait';

export interface WgPeerDump {
  publicKey: string;
  /** `ip:port`, or null when WireGuard has none yet. */
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the last handshake, 0 if none. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDump {
  publicKey: string;
  listenPort: number;
  peers: WgPeerDump[];
}

/** Parses `wg show IF dump` (tab separated: the interface line, then one line per peer). */
export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const head = lines[0]?.split('\t');
  if (!head || head.length < 4) throw new Error(`unexpected wg dump: ${JSON.stringify(text)}`);
  return {
    publicKey: head[1]!,
    listenPort: Number(head[2]),
    peers: lines.slice(1).map((l) => {
      const f = l.split('\t');
      return {
        publicKey: f[0]!,
        endpoint: f[2] === '(none)' ? null : f[2]!,
        allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
        latestHandshake: Number(f[4]),
        rxBytes: Number(f[5]),
        txBytes: Number(f[6]),
      };
    }),
  };
}

/** `wg show IF dump` inside `ns`. */
export async function wgDump(ns: Namespace | string, ifname: string): Promise<WgDump> {
  const name = typeof ns === 'string' ? ns : ns.name;
  const { stdout } = await exec(name, ['wg', 'show', ifname, 'dump']);
  return parseWgDump(stdout);
}

export async function wgKeyPair(): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = (await exec(null, ['wg', 'genkey'])).stdout.trim();
  const publicKey = (await exec(null, ['wg', 'pubkey'], { input: `${privateKey}\n` })).stdout.trim();
  return { privateKey, publicKey };
}

/**
 * A hand-configured wireguard-go interface in a namespace: proves the lab carries the WireGuard
 * data plane without any Trellis code. Runs `wireguard-go -f` (never WG_PROCESS_FOREGROUND=0).
 */
export class HandWireGuard {
  private constructor(
    readonly ns: Namespace,
    readonly ifname: string,
    readonly publicKey: string,
    readonly listenPort: number,
    readonly process: LabProcess,
  ) {}

  static async start(
    lab: Lab,
    ns: Namespace,
    opts: { listenPort: number; address: string; prefixLen: number },
  ): Promise<HandWireGuard> {
    const ifname = lab.wgInterfaceName();
    const keys = await wgKeyPair();
    const keyFile = join(lab.runDir, `${ifname}.key`);
    writeFileSync(keyFile, `${keys.privateKey}\n`, { mode: 0o600 });
    const proc = ns.spawn('wireguard-go', ['-f', ifname], {
      env: { ...process.env, LOG_LEVEL: 'verbose' },
      logName: `wireguard-go-${ifname}`,
    });
    await waitFor(() => existsSync(join(WG_SOCKET_DIR, `${ifname}.sock`)) || !proc.running, {
      timeoutMs: 10_000,
      what: `wireguard-go socket of ${ifname}`,
    });
    if (!proc.running) throw new Error(`wireguard-go ${ifname} exited:\n${proc.tail()}`);
    await ns.exec(['wg', 'set', ifname, 'private-key', keyFile, 'listen-port', String(opts.listenPort)]);
    await ns.exec(['ip', 'addr', 'add', `${opts.address}/${opts.prefixLen}`, 'dev', ifname]);
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
    return new HandWireGuard(ns, ifname, keys.publicKey, opts.listenPort, proc);
  }

  async addPeer(peer: {
    publicKey: string;
    allowedIps: string[];
    endpoint?: string;
    keepaliveS?: number;
  }): Promise<void> {
    const args = ['wg', 'set', this.ifname, 'peer', peer.publicKey, 'allowed-ips', peer.allowedIps.join(',')];
    if (peer.endpoint) args.push('endpoint', peer.endpoint);
    if (peer.keepaliveS) args.push('persistent-keepalive', String(peer.keepaliveS));
    await this.ns.exec(args);
  }

  dump(): Promise<WgDump> {
    return wgDump(this.ns, this.ifname);
  }
}
