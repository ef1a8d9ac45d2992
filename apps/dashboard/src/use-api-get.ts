import { useCallback, useEffect, useState } from 'react';
import type { ZodType } from 'zod';
import { api } from './api';

/**
 * What `GET path` answers, parsed by `schema`: null until it has; `load` asks again (after a change
 * the page made). A failure's message goes to `setError`.
 */
export function useApiGet<T>(path: string, schema: ZodType<T>, setError: (error: string | null) => void) {
  const [data, setData] = useState<T | null>(null);
  const load = useCallback(async () => {
    try {
      setData(await api('GET', path, schema));
    } catch (err) {
      setError((err as Error).message);
    }
  }, [path, schema, setError]);
  useEffect(() => {
    void load();
  }, [load]);
  return { data, load };
}
