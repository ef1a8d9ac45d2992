import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

/**
 * `BENCH_PROFILE=<dir>`: the broker records a V8 CPU profile over the change rounds and writes it
 * to `<dir>/broker-changes-<n>.cpuprofile` (open in Chrome's DevTools, or summarise with
 * `node bench/dist/profile-summary.js FILE`). The profiler's own cost inflates the CPU figures of
 * that run, so its per-change figures are not comparable with a run without it.
 */
export class BrokerProfiler {
  private session: Session | undefined;

  constructor(private readonly dir: string) {}

  async start(): Promise<void> {
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    this.session = session;
  }

  /** Stops the profile begun by `start` and writes it; returns the file. */
  async stop(name: string): Promise<string> {
    const session = this.session;
    if (!session) throw new Error('no profile is being recorded');
    this.session = undefined;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const file = join(this.dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return file;
  }
}
