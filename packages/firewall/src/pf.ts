import { readFile } from 'node:fs/promises';
import { OVERLAY_PREFIX } from '@trellis/proto';
import { type ApplyResult, type FirewallBackend, type FirewallCounters, SerialQueue } from './backend';
import {
  PF_ANCHOR,
  parsePfVerboseRules,
  pfAnchorRules,
  pfDigestLabel,
  pfLoadedLabel,
  pfMainHasAnchor,
  pfMainWithAnchor,
} from './pf-ruleset';
import {
  type InboundPolicy,
  type NormalizedPolicy,
  normalizeInbound,
  type PeerAllowance,
  spansCover,
} from './policy';
import { type CommandRunner, runChecked, runCommand } from './runner';

// macOS: the policy as the pf anchor "trellis". Nothing outside the anchor is written, except that
// pf only evaluates an anchor the main ruleset names: when `pfctl -sr` shows no `anchor "trellis"`,
// the main ruleset is reloaded from /etc/pf.conf with that one line added (the system's own rules
// come back unchanged; rules someone loaded by hand without pf.conf do not). pf is enabled with
// `pfctl -E`, which counts references, and `remove()` gives the reference back with `pfctl -X`.

export interface PfOptions {
  run?: CommandRunner;
  pfctl?: string;
  /** The system's main ruleset; default: /etc/pf.conf. */
  readMainConfig?: () => Promise<string>;
}

/** Whether going from `before` to `after` takes anything away from this peer. */
function narrowed(before: PeerAllowance, after: PeerAllowance | undefined): boolean {
  if (!after) return true;
  if (after.all) return false;
  if (before.all) return true;
  const covers = (proto: 'tcp' | 'udp') => spansCover(after[proto], before[proto]);
  return (before.icmp && !after.icmp) || !covers('tcp') || !covers('udp');
}

function killedCount(output: string): number {
  const m = /killed (\d+) states/.exec(output);
  return m ? Number(m[1]) : 0;
}

export class PfBackend implements FirewallBackend {
  readonly name = 'pf';
  private readonly run: CommandRunner;
  private readonly pfctl: string;
  private readonly readMainConfig: () => Promise<string>;
  private readonly queue = new SerialQueue();
  private hooked = false;
  private token: string | undefined;
  private last: { text: string; policy: NormalizedPolicy } | undefined;

  constructor(options: PfOptions = {}) {
    this.run = options.run ?? runCommand;
    this.pfctl = options.pfctl ?? 'pfctl';
    this.readMainConfig = options.readMainConfig ?? (() => readFile('/etc/pf.conf', 'utf8'));
  }

  async apply(policy: InboundPolicy): Promise<ApplyResult> {
    const next = normalizeInbound(policy);
    return this.queue.run(() => this.applyNormalized(next));
  }

  private async applyNormalized(policy: NormalizedPolicy): Promise<ApplyResult> {
    const text = pfAnchorRules(policy);
    if (this.last?.text === text) return { changed: false, mode: 'none', cut: 0 };
    if (!this.hooked) await this.hook();
    if (!this.last) {
      // After a restart: the anchor a previous run loaded keeps enforcing; reuse it when it matches.
      const loaded = await this.run(this.pfctl, ['-a', PF_ANCHOR, '-sr']);
      if (loaded.code === 0 && pfLoadedLabel(loaded.stdout) === pfDigestLabel(policy)) {
        this.last = { text, policy };
        return { changed: false, mode: 'none', cut: 0 };
      }
    }
    const before = this.last?.policy;
    this.last = undefined;
    await runChecked(this.run, this.pfctl, ['-a', PF_ANCHOR, '-f', '-'], text);
    this.last = { text, policy };
    const outcome = await this.cut(before, policy);
    return {
      changed: true,
      mode: 'full',
      cut: outcome.cut,
      ...(outcome.error ? { cutError: outcome.error } : {}),
    };
  }

  /** Enables pf (with a reference of our own) and makes sure the main ruleset evaluates the anchor. */
  private async hook(): Promise<void> {
    // `pfctl -E` prints "Token : N" (on stderr on macOS); the token releases our reference later.
    const enabled = await this.run(this.pfctl, ['-E']);
    if (enabled.code !== 0) {
      throw new Error(`cannot enable pf (exit ${enabled.code}): ${enabled.stderr.trim()}`);
    }
    this.token = /Token\s*:\s*(\d+)/.exec(`${enabled.stdout}\n${enabled.stderr}`)?.[1] ?? this.token;
    const main = await this.run(this.pfctl, ['-sr']);
    if (main.code !== 0 || !pfMainHasAnchor(main.stdout)) {
      await runChecked(this.run, this.pfctl, ['-f', '-'], pfMainWithAnchor(await this.readMainConfig()));
    }
    this.hooked = true;
  }

  /**
   * pf never re-evaluates a flow that has state, so states of a peer that lost access are killed.
   * macOS pfctl kills by host only: the peer's still-allowed flows toward this device go too.
   * Unknown previous policy (restart with a different ruleset): every peer's flows toward this device.
   */
  private async cut(before: NormalizedPolicy | undefined, after: NormalizedPolicy) {
    const next = new Map(after.peers.map((p) => [p.address, p]));
    const sources =
      before && before.selfAddress === after.selfAddress
        ? before.peers.filter((p) => narrowed(p, next.get(p.address))).map((p) => p.address)
        : [OVERLAY_PREFIX];
    let cut = 0;
    for (const source of sources) {
      const r = await this.run(this.pfctl, ['-k', source, '-k', after.selfAddress]).catch((e: Error) => e);
      if (r instanceof Error) return { cut, error: r.message };
      if (r.code !== 0) {
        return { cut, error: `pfctl -k ${source} failed (exit ${r.code}): ${r.stderr.trim()}` };
      }
      cut += killedCount(`${r.stdout}\n${r.stderr}`);
    }
    return { cut };
  }

  remove(): Promise<void> {
    return this.queue.run(async () => {
      this.last = undefined;
      await runChecked(this.run, this.pfctl, ['-a', PF_ANCHOR, '-F', 'all']);
      if (this.token !== undefined) await this.run(this.pfctl, ['-X', this.token]);
      this.token = undefined;
      this.hooked = false;
    });
  }

  counters(): Promise<FirewallCounters> {
    return this.queue.run(async () => {
      const r = await this.run(this.pfctl, ['-a', PF_ANCHOR, '-vsr']);
      return parsePfVerboseRules(r.code === 0 ? r.stdout : '');
    });
  }
}
