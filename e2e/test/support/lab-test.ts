import type { Lab } from '../../src';

/**
 * `it` whose failures name the lab's run directory, where every process's output is logged.
 * `getLab` is called lazily because labs are built in beforeAll.
 */
export function labIt(
  getLab: () => Lab | undefined,
  name: string,
  fn: () => Promise<void>,
  timeoutMs?: number,
): void {
  it(
    name,
    async () => {
      try {
        await fn();
      } catch (err) {
        const dir = getLab()?.runDir ?? '(lab not created)';
        if (err instanceof Error) {
          err.message += `\n\nlab logs: ${dir}`;
          throw err;
        }
        throw new Error(`${String(err)}\n\nlab logs: ${dir}`);
      }
    },
    timeoutMs,
  );
}

/** Fails fast with a clear message instead of a cryptic ip-netns error when not root. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0)
    throw new Error('e2e lab tests must run as root (network namespaces, nftables)');
}
