import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceId, WgKey } from '@trellis/proto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from '../state/atomic-file';
import type { ExitNodePin } from './route-selector';

/**
 * Its own file, not a field of gateway-prefs.json: that file's schema is strict, and an older
 * agent would refuse it (and not start) after a downgrade.
 */
export const EXIT_NODE_PIN_FILE = 'exit-node-pin.json';

/** The device, and the choice (`--exit-node NAME`) it was pinned for. */
const StoredPin = z.object({ exitNode: z.string().min(1), id: DeviceId, publicKey: WgKey });

export interface SavedPin {
  exitNode: string;
  pin: ExitNodePin;
}

/** The exit node's pin in the state directory (0600, written atomically). */
export class ExitNodePinFile {
  private readonly file: string;
  constructor(
    dir: string,
    private readonly log?: Logger,
  ) {
    this.file = join(dir, EXIT_NODE_PIN_FILE);
  }

  /** Read leniently: missing or unreadable, there is no pin (the choice is resolved by name again). */
  async load(): Promise<SavedPin | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      this.log?.warn({ err: (err as Error).message }, 'exit node pin not read: the choice is pinned again');
      return null;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    const parsed = StoredPin.safeParse(json);
    if (!parsed.success) {
      this.log?.warn({ file: this.file }, 'exit node pin malformed: ignored, the choice is pinned again');
      return null;
    }
    const { exitNode, id, publicKey } = parsed.data;
    return { exitNode, pin: { id, publicKey } };
  }

  save(exitNode: string, pin: ExitNodePin): Promise<void> {
    return writeFileAtomic(this.file, `${JSON.stringify({ exitNode, ...pin })}\n`);
  }

  remove(): Promise<void> {
    return rm(this.file, { force: true });
  }
}
