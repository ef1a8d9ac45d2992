import { API_PATHS, PolicyCheckResult } from '@trellis/proto';
import { useEffect, useRef, useState } from 'react';
import { api } from '../api';

/** How long typing must pause before the text is checked. */
export const CHECK_DEBOUNCE_MS = 300;

/** A check's answer with the text it was for; only the answer for the text shown counts. */
export interface CheckedText {
  text: string;
  result: PolicyCheckResult | null;
  error: string | null;
}

/**
 * Checks the policy text as it is typed: after a pause, with at most one request in flight (the
 * latest text goes next when it returns), and an answer for text that has changed since is kept
 * out of sight: the caller compares `checked.text` with the text it shows.
 */
export function usePolicyCheck(text: string | null, enabled: boolean): CheckedText | null {
  const [checked, setChecked] = useState<CheckedText | null>(null);
  const inFlight = useRef(false);
  const latest = useRef<string | null>(null);
  /** The text of the last request sent: the same text is not checked twice in a row. */
  const sent = useRef<string | null>(null);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  useEffect(() => {
    latest.current = text;
    if (!enabled || text === null) return;
    const send = async (body: string): Promise<void> => {
      inFlight.current = true;
      sent.current = body;
      let answer: CheckedText;
      try {
        answer = {
          text: body,
          result: await api('POST', `${API_PATHS.policy}/check`, PolicyCheckResult, { text: body }),
          error: null,
        };
      } catch (err) {
        answer = { text: body, result: null, error: (err as Error).message };
      }
      inFlight.current = false;
      if (!alive.current) return;
      setChecked(answer);
      // Typed on while this one ran: the newest text goes now.
      const next = latest.current;
      if (next !== null && next.length > 0 && next !== body) void send(next);
    };
    const timer = setTimeout(() => {
      if (!inFlight.current && text.length > 0 && text !== sent.current) void send(text);
    }, CHECK_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text, enabled]);

  return checked;
}
