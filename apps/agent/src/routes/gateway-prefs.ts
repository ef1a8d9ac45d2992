import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayPrefs } from '@trellis/proto';
import { writeFileAtomic } from '../state/atomic-file';

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

/** The settings in force: loaded at start, changed by `trellis set`, saved before they count. */
export class GatewaySettings {
  current: FullGatewayPrefs = { ...DEFAULT_GATEWAY_PREFS };
  private readonly store: GatewayPrefsStore;

  constructor(dir: string) {
    this.store = new GatewayPrefsStore(dir);
  }

  async load(): Promise<void> {
    this.current = await this.store.load();
  }

  /** Merges `change` in and saves it; false when it changes nothing. */
  async change(change: GatewayPrefs): Promise<boolean> {
    const next = mergePrefs(this.current, change);
    if (JSON.stringify(next) === JSON.stringify(this.current)) return false;
    await this.store.save(next);
    this.current = next;
    return true;
  }
}
