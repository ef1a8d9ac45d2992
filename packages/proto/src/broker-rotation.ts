import { brokerHostName } from './broker-urls';

/** One place to dial: a broker URL and the address its host name is connected at. */
export interface BrokerTarget {
  url: string;
  /** Null: the URL's host is an IP literal, or its name did not resolve this round (the connect resolves it). */
  address: string | null;
}

/** Every address a host name has now; rejects when it has none. */
export type ResolveHost = (host: string) => Promise<string[]>;

/** Addresses of one name tried per round: a failover must fit in seconds. */
export const MAX_ADDRESSES_PER_NAME = 8;

/**
 * Which broker instance to dial next, for every client of several instances (agents, relays).
 * A round tries each target once: every URL, and every address of a name that resolves to several.
 * A failed attempt goes on to the next target at once; only when the whole round failed does the
 * caller back off. A round starts after the target last dialed, so a dropped connection goes to
 * another instance first and its own comes last.
 */
export class BrokerRotation {
  private round: BrokerTarget[] = [];
  private nextIndex = 0;
  private last: BrokerTarget | null = null;
  /** Last good resolution of each name, used when the resolver fails. */
  private readonly known = new Map<string, string[]>();
  /** Bumped by every dial and cancel: a dial waiting on name resolution is then forgotten. */
  private generation = 0;

  constructor(private list: readonly string[]) {
    if (list.length === 0) throw new Error('no broker URL');
  }

  get urls(): readonly string[] {
    return this.list;
  }

  /** The target of the latest attempt: the connected one while connected. */
  get current(): BrokerTarget | null {
    return this.last;
  }

  /**
   * Every broker address known: the URLs' IP literals, every address of this round and every
   * resolution kept (an exit node must leave all of them on the direct path).
   */
  knownAddresses(): string[] {
    const out = new Set<string>();
    for (const url of this.list) {
      if (brokerHostName(url) === null) out.add(new URL(url).hostname.replace(/^\[|\]$/g, ''));
    }
    for (const t of this.round) if (t.address) out.add(t.address);
    for (const addresses of this.known.values()) for (const a of addresses) out.add(a);
    if (this.last?.address) out.add(this.last.address);
    return [...out].sort();
  }

  /** New URLs: the next attempt starts a fresh round. */
  setUrls(urls: readonly string[]): void {
    if (urls.length === 0) throw new Error('no broker URL');
    this.list = urls;
    this.round = [];
    this.nextIndex = 0;
    this.last = null;
    this.generation++;
  }

  /** Opens the next target; at a round's end resolves the names (async) for a new round first. */
  dial(resolve: ResolveHost, open: (target: BrokerTarget) => void): void {
    const generation = ++this.generation;
    const target = this.take();
    if (target) {
      open(target);
      return;
    }
    if (this.hostNames().length === 0) {
      // Only IP literals: nothing to wait for.
      this.startRound(new Map());
      const first = this.take();
      if (first) open(first);
      return;
    }
    void this.newRound(resolve).then(() => {
      if (generation !== this.generation) return;
      const first = this.take();
      if (first) open(first);
    });
  }

  /** Forgets a dial still waiting on name resolution (the client stopped). */
  cancel(): void {
    this.generation++;
  }

  /** The next target of this round, or null when every one was tried (then `newRound`). */
  take(): BrokerTarget | null {
    const target = this.round[this.nextIndex];
    if (!target) return null;
    this.nextIndex++;
    this.last = target;
    return target;
  }

  /**
   * After a failure: true to dial again at once, false to back off first. A connection that was up
   * ends its round (the next one starts after it) and is retried at once when another target exists;
   * a failed attempt is followed at once by the rest of its round.
   */
  retryNow(wasConnected: boolean): boolean {
    if (wasConnected) {
      this.endRound();
      return this.round.length > 1 || this.list.length > 1;
    }
    return this.nextIndex < this.round.length;
  }

  /** The next attempt starts a new round (after the target last dialed). */
  endRound(): void {
    this.nextIndex = this.round.length;
  }

  /** Resolves every name (in parallel), then starts a round. */
  async newRound(resolve: ResolveHost): Promise<void> {
    const resolved = await Promise.all(
      this.hostNames().map(async (host) => {
        const fresh = await resolve(host).catch(() => null);
        if (fresh && fresh.length > 0)
          this.known.set(host, [...new Set(fresh)].slice(0, MAX_ADDRESSES_PER_NAME));
        return [host, this.known.get(host) ?? []] as const;
      }),
    );
    this.startRound(new Map(resolved));
  }

  private hostNames(): string[] {
    return [...new Set(this.list.map(brokerHostName).filter((h): h is string => h !== null))];
  }

  /** Starts a round over these resolutions (host name → addresses), after the target last dialed. */
  startRound(addresses: ReadonlyMap<string, readonly string[]>): void {
    const targets = this.list.flatMap((url): BrokerTarget[] => {
      const host = brokerHostName(url);
      const found = host === null ? [] : (addresses.get(host) ?? []);
      return found.length > 0 ? found.map((address) => ({ url, address })) : [{ url, address: null }];
    });
    const at = this.lastIndexIn(targets);
    this.round = [...targets.slice(at + 1), ...targets.slice(0, at + 1)];
    this.nextIndex = 0;
  }

  /** Where the last target is in a new round: itself, else the last of its URL's, else none (-1). */
  private lastIndexIn(targets: BrokerTarget[]): number {
    const last = this.last;
    if (!last) return -1;
    const exact = targets.findIndex((t) => t.url === last.url && t.address === last.address);
    if (exact >= 0) return exact;
    let sameUrl = -1;
    targets.forEach((t, i) => {
      if (t.url === last.url) sameUrl = i;
    });
    return sameUrl;
  }
}
