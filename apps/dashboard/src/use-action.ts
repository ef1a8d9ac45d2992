import { useCallback, useState } from 'react';

/**
 * A change the user asked for: `busy` while it runs (controls disable themselves), its failure's
 * message through `setError` (cleared when the next one starts).
 */
export function useAction(setError: (error: string | null) => void) {
  const [busy, setBusy] = useState(false);
  const run = useCallback(
    async (work: () => Promise<void>) => {
      setBusy(true);
      setError(null);
      try {
        await work();
      } catch (err) {
        setError((err as Error).message);
      } finally {
        setBusy(false);
      }
    },
    [setError],
  );
  return { busy, run };
}
