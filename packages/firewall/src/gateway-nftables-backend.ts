import { SerialQueue } from './backend';
import type { CutOutcome } from './conntrack';
import {
  type GatewayFirewall,
  type GatewayPolicy,
  type NormalizedGateway,
  normalizeGateway,
} from './gateway';
import { cutGatewayFlows, gatewayNarrowed } from './gateway-cut';
import { NFT_GW_TABLE, nftGatewayHash, nftGatewayRemoveScript, nftGatewayScript } from './gateway-nftables';
import { type CommandRunner, runChecked, runCommand } from './runner';

/**
 * Linux: the gateway policy as the table `inet trellis_gw`, replaced whole on every change (a
 * gateway's rules change rarely, unlike inbound peer sets). The digest in the table's comment lets
 * a restarted agent leave identical rules alone. IP forwarding itself (net.ipv4.ip_forward) is the
 * caller's to switch on: it is host-wide, not ours to own.
 */
export class NftablesGatewayBackend implements GatewayFirewall {
  readonly name = 'nftables';
  private readonly run: CommandRunner;
  private readonly nft: string;
  private readonly queue = new SerialQueue();
  private readonly conntrack: string;
  private appliedHash: string | undefined;
  /** What the kernel holds, as this process applied it (undefined: unknown, e.g. after a restart). */
  private applied: NormalizedGateway | undefined;

  constructor(options: { run?: CommandRunner; nft?: string; conntrack?: string } = {}) {
    this.run = options.run ?? runCommand;
    this.nft = options.nft ?? 'nft';
    this.conntrack = options.conntrack ?? 'conntrack';
  }

  /**
   * Replaces the table when it differs; then, if the new rules may forbid a flow the old ones let
   * through, deletes exactly those flows (`cut`), so taking access away ends open connections too.
   */
  apply(policy: GatewayPolicy): Promise<{ changed: boolean; cut?: CutOutcome }> {
    // Validated before queueing: a bad policy changes nothing.
    const g = normalizeGateway(policy);
    return this.queue.run(async () => {
      const hash = nftGatewayHash(g);
      if (this.appliedHash === undefined) this.appliedHash = await this.kernelHash();
      if (this.appliedHash === hash) return { changed: false };
      this.appliedHash = undefined; // unknown until the kernel has taken the script
      await runChecked(this.run, this.nft, ['-f', '-'], nftGatewayScript(g, hash));
      this.appliedHash = hash;
      const before = this.applied;
      this.applied = g;
      if (!gatewayNarrowed(before, g)) return { changed: true };
      return { changed: true, cut: await cutGatewayFlows(this.run, this.conntrack, g) };
    });
  }

  remove(): Promise<void> {
    return this.queue.run(async () => {
      this.appliedHash = undefined;
      this.applied = undefined;
      await runChecked(this.run, this.nft, ['-f', '-'], nftGatewayRemoveScript());
    });
  }

  /** The digest in the kernel table's comment, if the table is there. */
  private async kernelHash(): Promise<string | undefined> {
    const r = await this.run(this.nft, ['-j', 'list', 'table', 'inet', NFT_GW_TABLE]);
    if (r.code !== 0) return undefined;
    try {
      const doc = JSON.parse(r.stdout) as { nftables?: Array<{ table?: { comment?: unknown } }> };
      const comment = doc.nftables?.find((i) => i.table)?.table?.comment;
      return typeof comment === 'string' ? comment : undefined;
    } catch {
      return undefined;
    }
  }
}
