import type { IssuePath, Locator, PolicyIssue } from './locations';
import { type Atom, atomOf, type Selector } from './selectors';

/** Nesting copies members into every enclosing group; this bounds the copying. */
const MAX_EXPANDED = 200_000;

/**
 * Every group with nested groups expanded into atoms. A group met again while it is being
 * expanded closes a cycle, reported at the member that closes it.
 */
export function expandGroups(
  rawGroups: ReadonlyMap<string, readonly string[]>,
  select: (raw: string, path: IssuePath, inGroup: boolean) => Selector | null,
  at: Locator,
  errors: PolicyIssue[],
  warnings: PolicyIssue[],
): Map<string, Set<Atom>> {
  const groups = new Map<string, Set<Atom>>();
  const expanding: string[] = [];
  let budget = MAX_EXPANDED;
  const expand = (name: string): Set<Atom> => {
    const done = groups.get(name);
    if (done) return done;
    const atoms = new Set<Atom>();
    expanding.push(name);
    (rawGroups.get(name) ?? []).forEach((raw, i) => {
      const path = ['groups', name, i];
      const sel = select(raw, path, true);
      if (sel?.kind !== 'group') {
        if (sel && sel.kind !== 'route') atoms.add(atomOf(sel)); // parseSelector refused it
        return;
      }
      const from = expanding.indexOf(sel.name);
      if (from >= 0) {
        const cycle = [...expanding.slice(from), sel.name].join(' -> ');
        errors.push(at.issue(`group cycle: ${cycle}`, path));
        return;
      }
      const inner = expand(sel.name);
      budget -= inner.size;
      if (budget >= 0) for (const a of inner) atoms.add(a);
    });
    expanding.pop();
    groups.set(name, atoms);
    return atoms;
  };
  for (const name of rawGroups.keys()) {
    if (!groups.has(name) && expand(name).size === 0) {
      warnings.push(at.issue(`group "${name}" has no members`, ['groups', name], true));
    }
  }
  if (budget < 0) {
    errors.push(at.issue(`groups expand to more than ${MAX_EXPANDED} members in all`, ['groups'], true));
  }
  return groups;
}
