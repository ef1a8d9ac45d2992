import type { ChildProcess } from 'node:child_process';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';
import { isEmptyUpdate } from '../../src/wireguard/types';
import { parseUapiGet, serializeUapiSet } from '../../src/wireguard/uapi';
import { UnsafeConfigValueError } from '../../src/wireguard/update-check';
import { parseWgDump, WgToolClient } from '../../src/wireguard/wg-tool';

// The mark on WireGuard's own UDP (exit nodes): UAPI `fwmark=`, `wg set IF fwmark`, and reading both back.

class RecordingRunner implements CommandRunner {
  readonly calls: string[][] = [];
  async run(command: string, args: string[]): Promise<CommandResult> {
    this.calls.push([command, ...args]);
    return { stdout: '', stderr: '', code: 0 };
  }
  spawn(): ChildProcess {
    throw new Error('not used');
  }
}

const KEY = `${'A'.repeat(43)}=`;

describe('WireGuard fwmark', () => {
  it('is written and read through UAPI, in decimal as the protocol has it', () => {
    expect(serializeUapiSet({ fwmark: 0x7472, peers: [] })).toBe('set=1\nfwmark=29810\n\n');
    expect(serializeUapiSet({ fwmark: 0, peers: [] })).toBe('set=1\nfwmark=0\n\n');
    expect(parseUapiGet('listen_port=1\nfwmark=29810\nerrno=0\n\n').fwmark).toBe(0x7472);
    expect(isEmptyUpdate({ fwmark: 0, peers: [] })).toBe(false);
  });

  it('refuses a mark that is not a 32-bit number', () => {
    for (const fwmark of [-1, 2 ** 32, 1.5, Number.NaN]) {
      expect(() => serializeUapiSet({ fwmark, peers: [] })).toThrow(UnsafeConfigValueError);
    }
  });

  it('is set with `wg set IF fwmark` (off for 0) and read from the dump', async () => {
    const runner = new RecordingRunner();
    const wg = new WgToolClient(runner, 'trellis0');
    await wg.set({ fwmark: 0x7472, peers: [] });
    await wg.set({ fwmark: 0, peers: [] });
    expect(runner.calls).toEqual([
      ['wg', 'set', 'trellis0', 'fwmark', '0x7472'],
      ['wg', 'set', 'trellis0', 'fwmark', 'off'],
    ]);
    expect(parseWgDump(`(none)\t${KEY}\t51820\t0x7472\n`).fwmark).toBe(0x7472);
    expect(parseWgDump(`(none)\t${KEY}\t51820\toff\n`).fwmark).toBe(0);
  });
});
