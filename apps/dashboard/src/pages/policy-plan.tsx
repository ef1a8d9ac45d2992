import type { PolicyDevicePlan, PolicyPlanResult } from '@trellis/proto';

type Change = PolicyDevicePlan['gains'][number];

/** One change as a sentence: "may now open tcp 22 on db-1, db-2" / "db-1 may now open … on it". */
function sentence(change: Change, gained: boolean): string {
  const peers = change.peers.join(', ');
  const what = change.text === 'all' ? 'everything' : change.text;
  const verb = gained ? 'may now open' : 'may no longer open';
  return change.direction === 'out' ? `${verb} ${what} on ${peers}` : `${peers} ${verb} ${what} on it`;
}

/** What applying the planned text would change, device by device, in words. */
export function PolicyPlanView({ plan, base }: { plan: PolicyPlanResult; base: number }) {
  if (!plan.ok) {
    return (
      <div className="card plan" role="status">
        <p className="error">
          The plan found {plan.errors.length} error{plan.errors.length === 1 ? '' : 's'}: nothing can be
          applied until they are fixed.
        </p>
      </div>
    );
  }
  return (
    <div className="card plan" role="status" aria-label="Plan">
      {plan.fromVersion !== base && (
        <p className="error">
          Someone applied version {plan.fromVersion} since this page read version {base}: the plan is against
          theirs, and applying replaces it.
        </p>
      )}
      <p>
        Compared with version {plan.fromVersion}:{' '}
        {plan.devices.length === 0
          ? 'no device would gain or lose anything.'
          : `${plan.devices.length} device${plan.devices.length === 1 ? '' : 's'} would change.`}{' '}
        {plan.tests} test{plan.tests === 1 ? '' : 's'} passed.
      </p>
      {plan.devices.map((d) => (
        <div key={d.device} data-plan-device={d.device}>
          <strong>{d.device}</strong>
          <ul>
            {d.gains.map((g) => (
              <li key={`g-${g.direction}-${g.text}-${g.peers.join()}`} className="gain">
                + {sentence(g, true)}
              </li>
            ))}
            {d.losses.map((l) => (
              <li key={`l-${l.direction}-${l.text}-${l.peers.join()}`} className="loss">
                − {sentence(l, false)}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}
