import {
  API_PATHS,
  PolicyApplyResult,
  PolicyDocument,
  PolicyPlanResult,
  PolicyVersionInfo,
} from '@trellis/proto';
import { useCallback, useEffect, useState } from 'react';
import { z } from 'zod';
import { api } from '../api';
import { ErrorLine } from '../components';
import { PolicyEditor } from './policy-editor';
import { PolicyExplain } from './policy-explain';
import { PolicyHistory } from './policy-history';
import { PolicyPlanView } from './policy-plan';
import { usePolicyCheck } from './use-policy-check';

const History = z.array(PolicyVersionInfo);

/** The check's verdict on the text shown, in one line. */
function checkLine(text: string, checked: ReturnType<typeof usePolicyCheck>): { cls: string; words: string } {
  if (text.length === 0) return { cls: 'error', words: 'The policy is empty.' };
  if (!checked || checked.text !== text) return { cls: 'sub', words: 'Checking…' };
  if (checked.error) return { cls: 'error', words: `Not checked: ${checked.error}` };
  const r = checked.result!;
  const tests = `${r.tests} test${r.tests === 1 ? '' : 's'}`;
  const failed = r.errors.filter((e) => e.message.startsWith('test failed')).length;
  if (r.ok) return { cls: 'done', words: `Valid; ${tests}, all passed.` };
  if (failed === r.errors.length) return { cls: 'error', words: `${failed} of ${tests} failed.` };
  return { cls: 'error', words: `${r.errors.length} error${r.errors.length === 1 ? '' : 's'}.` };
}

/**
 * The access policy: admins edit the file (checked as they type), plan, and apply only the text
 * they planned, unchanged and valid; history, rollback and "may A reach B" below. Members read.
 */
export function PolicyPage({ admin }: { admin: boolean }) {
  const [doc, setDoc] = useState<PolicyDocument | null>(null);
  const [history, setHistory] = useState<PolicyVersionInfo[]>([]);
  const [text, setText] = useState<string | null>(null);
  const [plan, setPlan] = useState<{ text: string; result: PolicyPlanResult } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const checked = usePolicyCheck(text, admin);

  const load = useCallback(async (keepText = false) => {
    try {
      const [current, versions] = await Promise.all([
        api('GET', API_PATHS.policy, PolicyDocument),
        api('GET', `${API_PATHS.policy}/history`, History),
      ]);
      setDoc(current);
      setHistory(versions);
      if (!keepText) setText(current.text);
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  if (!doc || text === null)
    return <section>{error ? <ErrorLine error={error} /> : <p>Loading…</p>}</section>;
  const shown = checked && checked.text === text ? checked.result : null;
  const issues = [
    ...(shown?.errors ?? []).map((issue) => ({ kind: 'error' as const, issue })),
    ...(shown?.warnings ?? []).map((issue) => ({ kind: 'warning' as const, issue })),
  ];
  const planned = plan !== null && plan.text === text;
  const canApply = planned && plan.result.ok && plan.result.errors.length === 0 && !busy;
  const verdict = checkLine(text, checked);

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await what();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const doPlan = () =>
    run(async () => {
      const planning = text;
      setPlan({
        text: planning,
        result: await api('POST', `${API_PATHS.policy}/plan`, PolicyPlanResult, { text: planning }),
      });
    });
  const applied = async (result: PolicyApplyResult, what: string) => {
    setPlan(null);
    setNotice(
      `${what} version ${result.version}: ${result.devicesChanged} device${result.devicesChanged === 1 ? '' : 's'} changed.`,
    );
    await load();
  };
  const doApply = () =>
    run(async () => applied(await api('PUT', API_PATHS.policy, PolicyApplyResult, { text }), 'Applied'));

  return (
    <section>
      <h1>Access policy</h1>
      <p className="sub">
        Version {doc.version}
        {doc.version === 0
          ? ' (the default)'
          : `, applied by ${doc.appliedBy} on ${new Date(doc.appliedAt).toLocaleString()}`}
        . Rules only allow: what no rule allows is denied. The file's tests run on every check, plan and
        apply; a failing test makes the policy invalid.
        {admin ? '' : ' Only owners and admins may change it.'}
      </p>
      <PolicyEditor
        text={text}
        readOnly={!admin}
        onChange={(t) => {
          setText(t);
          setNotice(null);
        }}
        issues={issues}
      />
      {admin && (
        <div className="actions">
          <span className={verdict.cls} data-testid="check-verdict">
            {verdict.words}
          </span>
          <button type="button" disabled={busy || text.length === 0} onClick={() => void doPlan()}>
            Plan
          </button>
          <button type="button" className="primary" disabled={!canApply} onClick={() => void doApply()}>
            Apply
          </button>
          <button type="button" disabled={text === doc.text} onClick={() => setText(doc.text)}>
            Discard changes
          </button>
          <span className="sub">
            {text === doc.text && !planned
              ? 'This is the policy in force.'
              : planned
                ? plan.result.ok
                  ? 'Planned: apply puts this text in force.'
                  : 'Fix the errors, then plan again.'
                : 'Plan the text before applying it.'}
          </span>
        </div>
      )}
      <ErrorLine error={error} />
      {notice && (
        <p className="done" role="status">
          {notice}
        </p>
      )}
      {admin && planned && <PolicyPlanView plan={plan.result} base={doc.version} />}
      <PolicyExplain />
      <PolicyHistory
        versions={history}
        current={doc.version}
        admin={admin}
        onRolledBack={(r) => void applied(r, 'Rolled back as')}
      />
    </section>
  );
}
