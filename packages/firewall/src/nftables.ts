import {
  type ApplyResult,
  type FirewallBackend,
  type FirewallCounters,
  SerialQueue,
  ZERO_COUNT,
} from './backend';
import { cutFlows, planCut } from './conntrack';
import {
  NFT_INPUT_RULES,
  NFT_OUTPUT_RULES,
  NFT_TABLE,
  type NftState,
  nftFullScript,
  nftIncrementalScript,
  nftRemoveScript,
  nftState,
  nftStateHash,
} from './nftables-script';
import { type InboundPolicy, type NormalizedPolicy, normalizeInbound } from './policy';
import { type CommandRunner, runChecked, runCommand } from './runner';

export interface NftablesOptions {
  run?: CommandRunner;
  /** Binaries, when not on PATH as `nft` and `conntrack`. */
  nft?: string;
  conntrack?: string;
}

interface Applied {
  policy: NormalizedPolicy;
  state: NftState;
  hash: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What `nft -j list table inet trellis` says: the state comment and the size of each part. */
export interface NftKernelSummary {
  hash?: string;
  elements: Record<string, number>;
  rules: Record<string, number>;
}

export function summarizeNftJson(text: string): NftKernelSummary {
  const summary: NftKernelSummary = { elements: {}, rules: {} };
  const doc: unknown = JSON.parse(text);
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const { set, rule } = item;
    if (isObject(set) && typeof set.name === 'string') {
      const elems = Array.isArray(set.elem) ? set.elem : [];
      summary.elements[set.name] = elems.length;
      const first: unknown = elems[0];
      if (set.name === 'state' && isObject(first) && isObject(first.elem)) {
        const comment = first.elem.comment;
        if (typeof comment === 'string') summary.hash = comment;
      }
    }
    if (isObject(rule) && typeof rule.chain === 'string') {
      summary.rules[rule.chain] = (summary.rules[rule.chain] ?? 0) + 1;
    }
  }
  return summary;
}

/** Whether the kernel's table is exactly what `state` would load. */
function kernelMatches(k: NftKernelSummary, state: NftState, hash: string): boolean {
  return (
    k.hash === hash &&
    k.elements.state === 1 &&
    (k.elements.allow_all ?? 0) === state.allowAll.length &&
    (k.elements.allow_icmp ?? 0) === state.allowIcmp.length &&
    (k.elements.allow_ports ?? 0) === state.allowPorts.length &&
    k.rules.input === NFT_INPUT_RULES &&
    k.rules.output === NFT_OUTPUT_RULES
  );
}

/**
 * Linux: the policy as one nftables table, `inet trellis`, that Trellis owns alone. It never
 * flushes or edits anything else; other tables keep deciding for themselves (a drop anywhere is
 * final in nftables, so whatever they block stays blocked).
 */
export class NftablesBackend implements FirewallBackend {
  readonly name = 'nftables';
  private readonly run: CommandRunner;
  private readonly nft: string;
  private readonly conntrack: string;
  private readonly queue = new SerialQueue();
  /** What the kernel holds, as far as this instance knows; undefined until applied or verified. */
  private applied: Applied | undefined;

  constructor(options: NftablesOptions = {}) {
    this.run = options.run ?? runCommand;
    this.nft = options.nft ?? 'nft';
    this.conntrack = options.conntrack ?? 'conntrack';
  }

  async apply(policy: InboundPolicy): Promise<ApplyResult> {
    // Validated before queueing (synchronously, as the rejection): a bad policy changes nothing.
    const next = normalizeInbound(policy);
    return this.queue.run(() => this.applyNormalized(next));
  }

  private async applyNormalized(policy: NormalizedPolicy): Promise<ApplyResult> {
    const state = nftState(policy);
    const hash = nftStateHash(state);
    if (this.applied?.hash === hash) return { changed: false, mode: 'none', cut: 0 };
    if (!this.applied) {
      // A fresh instance (agent restart): the rules a previous run left keep enforcing; if they are
      // exactly what is asked for, touch nothing.
      const kernel = await this.readKernel();
      if (kernel && kernelMatches(kernel, state, hash)) {
        this.applied = { policy, state, hash };
        return { changed: false, mode: 'none', cut: 0 };
      }
    }
    const before = this.applied;
    let mode: ApplyResult['mode'] = 'full';
    const incremental = before ? nftIncrementalScript(before.state, state, hash) : null;
    this.applied = undefined; // unknown until the kernel has taken one of the scripts
    if (incremental !== null && (await this.run(this.nft, ['-f', '-'], incremental)).code === 0) {
      mode = 'incremental';
    } else {
      // No incremental path, or it failed (someone edited the table): replace the whole table.
      await runChecked(this.run, this.nft, ['-f', '-'], nftFullScript(state, hash));
    }
    this.applied = { policy, state, hash };
    const outcome = await cutFlows(this.run, this.conntrack, planCut(before?.policy, policy), policy);
    return { changed: true, mode, cut: outcome.cut, ...(outcome.error ? { cutError: outcome.error } : {}) };
  }

  private async readKernel(): Promise<NftKernelSummary | null> {
    const r = await this.run(this.nft, ['-j', 'list', 'table', 'inet', NFT_TABLE]);
    if (r.code !== 0) return null; // no table (or no permission): a full apply settles it
    try {
      return summarizeNftJson(r.stdout);
    } catch {
      return null;
    }
  }

  remove(): Promise<void> {
    return this.queue.run(async () => {
      this.applied = undefined;
      await runChecked(this.run, this.nft, ['-f', '-'], nftRemoveScript());
    });
  }

  counters(): Promise<FirewallCounters> {
    return this.queue.run(async () => {
      const r = await this.run(this.nft, ['-j', 'list', 'counters', 'table', 'inet', NFT_TABLE]);
      const counts: Record<string, { packets: number; bytes: number }> = {};
      if (r.code === 0) {
        const doc: unknown = JSON.parse(r.stdout);
        const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
        for (const item of items) {
          const c = isObject(item) ? item.counter : undefined;
          if (isObject(c) && typeof c.name === 'string') {
            counts[c.name] = { packets: Number(c.packets) || 0, bytes: Number(c.bytes) || 0 };
          }
        }
      }
      return {
        accepted: counts.accepted ?? { ...ZERO_COUNT },
        dropped: counts.dropped ?? { ...ZERO_COUNT },
        rejected: counts.rejected ?? { ...ZERO_COUNT },
      };
    });
  }
}
