import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { NetRoute } from '../platform/windows';
import { writeFileAtomic } from '../state/atomic-file';

/** Under the state directory: the exit routes this agent added, so only those are ever removed. */
export const EXIT_ROUTES_FILE = 'exit-routes.json';

const RecordedRoute = z.object({
  prefix: z.string(),
  nextHop: z.string(),
  metric: z.number().int(),
  ifIndex: z.number().int(),
});
const RouteFile = z.object({ routes: z.array(RecordedRoute) });

/** The identity of a route in the active store: its prefix, next hop and interface. */
export function routeKey(r: NetRoute): string {
  return `${r.prefix.toLowerCase()} ${r.nextHop.toLowerCase()} ${r.ifIndex}`;
}

/**
 * The routes we added, kept in a file: the bypass host routes live on the physical adapter and
 * outlive a crash, and a metric alone cannot tell them from another program's. A route counts as
 * ours only while it is recorded and in the table, so a stale record (a reboot cleared the active
 * store) never claims a route someone else adds later.
 */
export class RouteRecord {
  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** Nothing recorded (no file, or one that cannot be read as ours): no route is ours. */
  async read(): Promise<NetRoute[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      return RouteFile.parse(JSON.parse(text)).routes;
    } catch {
      // Leaving a route behind is better than removing another program's.
      this.log.warn({ file: this.file }, 'the record of exit routes is unreadable: none is removed');
      return [];
    }
  }

  async write(routes: readonly NetRoute[]): Promise<void> {
    const plain = routes.map(({ prefix, nextHop, metric, ifIndex }) => ({
      prefix,
      nextHop,
      metric,
      ifIndex,
    }));
    await writeFileAtomic(this.file, `${JSON.stringify({ routes: plain }, null, 2)}\n`);
  }
}
