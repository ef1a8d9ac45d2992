import type { ChildProcess } from 'node:child_process';

/** Waits for the next message of one kind from a child, failing on its error or exit. */
export function next<T extends { kind: string }, K extends T['kind']>(
  child: ChildProcess,
  kind: K,
  onOther?: (m: T) => void,
): Promise<Extract<T, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: T) => {
      if (m.kind === kind) {
        cleanup();
        resolve(m as Extract<T, { kind: K }>);
      } else if (m.kind === 'error') {
        cleanup();
        reject(new Error((m as unknown as { message: string }).message));
      } else onOther?.(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited with ${code}`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Runs `fn` over `items` with at most `concurrency` at a time. */
export async function pool<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}
