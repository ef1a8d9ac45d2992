import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayPrefs } from '@trellis/proto';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../state/atomic-file';
import { ExitNodePinFile } from './exit-node-pin';
import type { ExitNodePin } from './route-selector';

/** The settings with every field filled in. */
export type FullGatewayPrefs = Required<GatewayPrefs>;

export const DEFAULT_GATEWAY_PREFS: FullGatewayPrefs = {
  advertiseRoutes: [],
  advertiseExitNode: false,
  snatRoutes: true,
  acceptRoutes: true,
  exitNode: null,
  exitNodeAllowLan: true,
};

export const GATEWAY_PREFS_FILE = 'gateway-prefs.json';

/** Where the route driver keeps the exit node's pin (GatewaySettings). */
export interface ExitNodePinStore {
  exitNodePin(): ExitNodePin | null;
  /** Pins the choice `wanted` to a device (saved); ignored when the choice changed meanwhile. */
  pinExitNode(wanted: string, pin: ExitNodePin): Promise<void>;
}

/** `change` over `current`: absent fields keep their value; routes are kept sorted and unique. */
export function mergePrefs(current: FullGatewayPrefs, change: GatewayPrefs): FullGatewayPrefs {
  const merged = { ...current };
  for (const [k, v] of Object.entries(change)) {
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  merged.advertiseRoutes = [...new Set(merged.advertiseRoutes)].sort();
  return merged;
}

/** What the agent advertises: its subnet routes, and the exit route for an exit node. */
export function advertisedRoutes(p: FullGatewayPrefs): string[] {
  return p.advertiseExitNode ? [...p.advertiseRoutes, '0.0.0.0/0'] : [...p.advertiseRoutes];
}

/** The settings in the state directory (0600, written atomically); defaults when never set. */
export class GatewayPrefsStore {
  private readonly file: string;
  constructor(dir: string) {
    this.file = join(dir, GATEWAY_PREFS_FILE);
  }

  async load(): Promise<FullGatewayPrefs> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_GATEWAY_PREFS };
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.file} is not JSON (${(err as Error).message}): fix or remove it`);
    }
    const parsed = GatewayPrefs.safeParse(json);
    if (!parsed.success) throw new Error(`${this.file} is invalid: ${parsed.error.message}`);
    return mergePrefs(DEFAULT_GATEWAY_PREFS, parsed.data);
  }

  save(p: FullGatewayPrefs): Promise<void> {
    return writeFileAtomic(this.file, `${JSON.stringify(p)}\n`);
  }
}

/**
 * Whether giving the exit node again re-pins it: `set` always does (choosing again); `up`, which a
 * boot script may run with the same flags on every boot, only when the choice changes.
 */
export type PrefsSource = 'set' | 'up';

/** The settings in force: loaded at start, changed by `trellis set`, saved before they count. */
export class GatewaySettings implements ExitNodePinStore {
  current: FullGatewayPrefs = { ...DEFAULT_GATEWAY_PREFS };
  /** Null until the choice is first resolved (and saved), and whenever no exit node is chosen. */
  private pin: ExitNodePin | null = null;
  private readonly store: GatewayPrefsStore;
  private readonly pins: ExitNodePinFile;
  /** `set` and the route driver's pinning come from different queues: one write at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string, log?: Logger) {
    this.store = new GatewayPrefsStore(dir);
    this.pins = new ExitNodePinFile(dir, log);
  }

  async load(): Promise<void> {
    this.current = await this.store.load();
    const saved = await this.pins.load();
    // A pin made for another choice (changed by an older agent meanwhile) is no pin.
    this.pin = saved && saved.exitNode === this.current.exitNode ? saved.pin : null;
  }

  /** Merges `change` in and saves it; false when it changes nothing. */
  change(change: GatewayPrefs, source: PrefsSource = 'set'): Promise<boolean> {
    return this.serial(async () => {
      const next = mergePrefs(this.current, change);
      const chosen = next.exitNode !== this.current.exitNode;
      const repin = chosen || (change.exitNode !== undefined && source === 'set');
      const prefsChanged = JSON.stringify(next) !== JSON.stringify(this.current);
      if (!prefsChanged && !(repin && this.pin !== null)) return false;
      // The pin goes first: a crash between the two writes leaves a choice to pin again, never a
      // pin for the wrong one.
      if (repin) {
        await this.pins.remove();
        this.pin = null;
      }
      if (prefsChanged) await this.store.save(next);
      this.current = next;
      return true;
    });
  }

  exitNodePin(): ExitNodePin | null {
    return this.pin;
  }

  pinExitNode(wanted: string, pin: ExitNodePin): Promise<void> {
    return this.serial(async () => {
      if (this.current.exitNode !== wanted) return;
      // In force once saved: a failed write leaves it unpinned, pinned again at the next apply.
      await this.pins.save(wanted, pin);
      this.pin = pin;
    });
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
