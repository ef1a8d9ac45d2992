import {
  type ApplyResult,
  type FirewallBackend,
  type FirewallCounters,
  SerialQueue,
  ZERO_COUNT,
} from './backend';
import { type InboundPolicy, normalizeInbound } from './policy';
import {
  buildWfpFilterSet,
  normalizeLuid,
  WFP_PROVIDER_KEY,
  WFP_SUBLAYER_KEY,
  type WfpFilter,
  type WfpProvider,
  type WfpSubLayer,
} from './wfp-filters';

// Windows: the policy as WFP filters in Trellis' own provider and sublayer, independent of the
// Windows Firewall service. The native engine (fwpuclnt.dll through an FFI library) is not part of
// this package: anything implementing WfpEngine drives it.

/**
 * The few Fwpm* calls the backend needs. `openSession({ dynamic: false })` keeps the objects after
 * the session ends (an agent restart leaves the policy enforced). addProvider/addSubLayer succeed
 * when the object already exists (FWP_E_ALREADY_EXISTS is not an error).
 */
export interface WfpEngine {
  openSession(options: { dynamic: boolean }): Promise<void>;
  /** Keys of the filters in a sublayer (FwpmFilterEnum), to diff against after a restart. */
  filterKeys(subLayerKey: string): Promise<string[]>;
  /** ConvertInterfaceAliasToLuid, when the options carry no LUID. */
  interfaceLuid?(alias: string): Promise<bigint | string>;
  beginTransaction(): Promise<void>;
  addProvider(provider: WfpProvider): Promise<void>;
  addSubLayer(subLayer: WfpSubLayer): Promise<void>;
  addFilter(filter: WfpFilter): Promise<void>;
  deleteFilterByKey(key: string): Promise<void>;
  deleteSubLayerByKey(key: string): Promise<void>;
  deleteProviderByKey(key: string): Promise<void>;
  commitTransaction(): Promise<void>;
  abortTransaction(): Promise<void>;
  /** Drop counts (e.g. from FWPM_NET_EVENT), if the engine keeps any. */
  counters?(): Promise<FirewallCounters>;
  /**
   * Whether `err` means the session is gone (the Base Filtering Engine restarted, the RPC handle
   * died): the backend then opens a new one on the next call and enumerates again.
   */
  isSessionLost?(err: unknown): boolean;
}

export interface WfpOptions {
  engine: WfpEngine;
  /** The WireGuard adapter's NET_LUID; else the engine resolves the interface name. */
  interfaceLuid?: bigint | string;
}

export class WfpBackend implements FirewallBackend {
  readonly name = 'wfp';
  private readonly engine: WfpEngine;
  private readonly luid: string | undefined;
  private readonly queue = new SerialQueue();
  private session = false;
  /** Filter keys in our sublayer as far as this instance knows; undefined until enumerated. */
  private installed: Set<string> | undefined;

  constructor(options: WfpOptions) {
    this.engine = options.engine;
    this.luid = options.interfaceLuid === undefined ? undefined : normalizeLuid(options.interfaceLuid);
  }

  async apply(policy: InboundPolicy): Promise<ApplyResult> {
    const next = normalizeInbound(policy);
    return this.run(async () => {
      const luid = this.luid ?? (await this.resolveLuid(next.interfaceName));
      const set = buildWfpFilterSet(next, luid);
      const installed = await this.installedKeys();
      const wanted = new Map(set.filters.map((f) => [f.key, f]));
      const gone = [...installed].filter((k) => !wanted.has(k));
      const added = set.filters.filter((f) => !installed.has(f.key));
      if (gone.length === 0 && added.length === 0) return { changed: false, mode: 'none', cut: 0 };
      const fresh = installed.size === 0;
      await this.transaction(async () => {
        if (fresh) {
          await this.engine.addProvider(set.provider);
          await this.engine.addSubLayer(set.subLayer);
        }
        for (const key of gone) await this.engine.deleteFilterByKey(key);
        for (const f of added) await this.engine.addFilter(f);
      });
      this.installed = new Set(wanted.keys());
      // WFP re-authorizes established ALE flows after filters at their layer change, so a flow the
      // new set forbids is dropped by the kernel on its next packet; there is nothing to count here.
      return { changed: true, mode: fresh ? 'full' : 'incremental', cut: 0 };
    });
  }

  /** Serialized; after a lost session the next call reopens it and diffs against what WFP holds. */
  private run<T>(body: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      try {
        return await body();
      } catch (err) {
        if (this.engine.isSessionLost?.(err)) {
          this.session = false;
          this.installed = undefined;
        }
        throw err;
      }
    });
  }

  private async resolveLuid(alias: string): Promise<string> {
    if (!this.engine.interfaceLuid) {
      throw new Error('WfpBackend needs interfaceLuid or an engine that resolves it');
    }
    return normalizeLuid(await this.engine.interfaceLuid(alias));
  }

  private async installedKeys(): Promise<Set<string>> {
    if (!this.session) {
      await this.engine.openSession({ dynamic: false });
      this.session = true;
    }
    this.installed ??= new Set(await this.engine.filterKeys(WFP_SUBLAYER_KEY));
    return this.installed;
  }

  /** Everything in one transaction; on failure nothing changed and the next apply re-enumerates. */
  private async transaction(body: () => Promise<void>): Promise<void> {
    await this.engine.beginTransaction();
    try {
      await body();
      await this.engine.commitTransaction();
    } catch (err) {
      this.installed = undefined;
      await this.engine.abortTransaction().catch(() => undefined);
      throw err;
    }
  }

  remove(): Promise<void> {
    return this.run(async () => {
      const installed = await this.installedKeys();
      await this.transaction(async () => {
        for (const key of installed) await this.engine.deleteFilterByKey(key);
        await this.engine.deleteSubLayerByKey(WFP_SUBLAYER_KEY);
        await this.engine.deleteProviderByKey(WFP_PROVIDER_KEY);
      });
      this.installed = new Set();
    });
  }

  counters(): Promise<FirewallCounters> {
    return this.queue.run(async () => (await this.engine.counters?.()) ?? { dropped: { ...ZERO_COUNT } });
  }
}
