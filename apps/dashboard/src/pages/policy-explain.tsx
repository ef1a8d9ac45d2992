import { type AccessRules, API_PATHS, PolicyExplainResult } from '@trellis/proto';
import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { ErrorLine } from '../components';

/** `tcp 22, 8000-8100; icmp`, `everything`, `nothing`: an AccessRules list for people. */
export function accessText(rules: AccessRules): string {
  if (rules.length === 0) return 'nothing';
  if (rules.some((r) => r.proto === undefined)) return 'everything';
  return rules
    .map((r) =>
      r.ports
        ? `${r.proto} ${r.ports.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')}`
        : `${r.proto}`,
    )
    .join('; ');
}

/** "May A reach B:port?": the policy in force answers, with the rules (and lines) that allow it. */
export function PolicyExplain() {
  const [answer, setAnswer] = useState<{ src: string; dst: string; result: PolicyExplainResult } | null>(
    null,
  );
  const [error, setError] = useState<string | null>(null);
  const ask = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const src = String(form.get('src') ?? '').trim();
    const port = String(form.get('port') ?? '').trim();
    const dst = `${String(form.get('dst') ?? '').trim()}${port ? `:${port}` : ''}`;
    setError(null);
    try {
      setAnswer({
        src,
        dst,
        result: await api('POST', `${API_PATHS.policy}/explain`, PolicyExplainResult, { src, dst }),
      });
    } catch (err) {
      setAnswer(null);
      setError((err as Error).message);
    }
  };
  const r = answer?.result;
  return (
    <div>
      <h2>May A reach B?</h2>
      <form className="inline" onSubmit={(e) => void ask(e)}>
        <label>
          From device <input name="src" required maxLength={128} placeholder="laptop-1" />
        </label>
        <label>
          To device <input name="dst" required maxLength={128} placeholder="db-1" />
        </label>
        <label>
          Port <input name="port" maxLength={20} placeholder="22, udp/53, icmp or empty" />
        </label>
        <button type="submit">Ask</button>
      </form>
      <ErrorLine error={error} />
      {answer && r && (
        <div className="card" role="status" aria-label="Verdict">
          <p className={r.allowed ? 'done' : 'error'}>
            <strong>{r.allowed ? 'Allowed' : 'Denied'}</strong>: {answer.src} → {answer.dst}
            {r.allowed ? '' : ' (no rule allows it: what no rule allows is denied)'}
          </p>
          {r.reasons.length > 0 && (
            <ul className="reasons">
              {r.reasons.map((reason) => (
                <li key={`${reason.kind}-${reason.line}-${reason.index ?? ''}-${reason.text}`}>
                  by {reason.kind === 'cidr' ? 'block' : reason.kind}
                  {reason.index === undefined ? '' : ` ${reason.index + 1}`} (line {reason.line}):{' '}
                  <code>{reason.text}</code>
                </li>
              ))}
            </ul>
          )}
          <p className="sub">
            {answer.src} may open on the other: {accessText(r.out)}. The other may open on {answer.src}:{' '}
            {accessText(r.in)}.
          </p>
        </div>
      )}
    </div>
  );
}
