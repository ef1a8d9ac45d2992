import { EXIT_ROUTE, MAX_ACCESS_SPANS } from '@trellis/proto';
import { buildBlocks } from './blocks';
import { expandGroups } from './groups';
import type { IssuePath, Locator, PolicyIssue } from './locations';
import { EVERYTHING, isEverything, mergeSpans, NOTHING, type PortSet, parsePortSpec } from './ports';
import type { PolicyFile } from './schema';
import {
  type Atom,
  atomOf,
  DEVICE_NAME_RE,
  parseSelector,
  parseTestTarget,
  type Selector,
} from './selectors';
import type {
  AutoApprovers,
  DeviceNameRef,
  Policy,
  PolicyAssociation,
  PolicyRule,
  PolicyTestCase,
} from './types';

const ROUTE_ONLY_DST =
  "only a rule's dst may name one (hosts behind a gateway are reached, they are not sources)";

/** The wire's RouteAccessList bound: a pair's route access lists each destination at most once. */
const MAX_ROUTED_DESTINATIONS = 256;

/** Group nesting is expanded recursively; this bounds the depth. */
const MAX_GROUPS = 1000;

/** Checks the references between sections and builds the policy. */
export function resolve(
  text: string,
  file: PolicyFile,
  at: Locator,
): { policy?: Policy; errors: PolicyIssue[]; warnings: PolicyIssue[] } {
  const errors: PolicyIssue[] = [];
  const warnings: PolicyIssue[] = [];
  const deviceNames: DeviceNameRef[] = [];
  const { blocks, errors: blockErrors } = buildBlocks(file.cidrs ?? {}, at);
  errors.push(...blockErrors);
  const blockIndex = new Map(blocks.map((b, i) => [b.name, i]));
  const tagOwners = new Map(Object.entries(file.tagOwners ?? {}));
  const rawGroups = new Map(Object.entries(file.groups ?? {}));
  if (rawGroups.size > MAX_GROUPS) errors.push(at.issue(`at most ${MAX_GROUPS} groups`, ['groups'], true));

  /** A selector checked against the other sections; null (and an error) when it is unusable. */
  const select = (raw: string, path: IssuePath, inGroup: boolean): Selector | null => {
    const sel = parseSelector(raw, inGroup);
    const problem =
      typeof sel === 'string'
        ? sel
        : sel.kind === 'group' && !rawGroups.has(sel.name)
          ? `unknown group "${sel.name}"`
          : sel.kind === 'tag' && !tagOwners.has(sel.name)
            ? `tag "${sel.name}" is not declared in tagOwners`
            : sel.kind === 'cidr' && !blockIndex.has(sel.name)
              ? `unknown block "${sel.name}" (not in cidrs)`
              : null;
    if (problem !== null) {
      errors.push(at.issue(problem, path));
      return null;
    }
    if (typeof sel !== 'string' && sel.kind === 'device') {
      deviceNames.push({ name: sel.name, path, ...at.position(path) });
    }
    return sel as Selector;
  };

  const groups =
    rawGroups.size > MAX_GROUPS
      ? new Map<string, Set<Atom>>()
      : expandGroups(rawGroups, select, at, errors, warnings);
  /**
   * A side: its own atoms in one set, plus the sets of its groups (shared, not copied). Routed
   * destinations (`routes` given: a rule's dst) go there; `*` there covers every route too.
   */
  const sideOf = (list: string[], path: IssuePath, routes?: Set<string>): ReadonlySet<Atom>[] => {
    const own = new Set<Atom>();
    const shared = new Set<ReadonlySet<Atom>>();
    list.forEach((raw, i) => {
      const sel = select(raw, [...path, i], false);
      if (sel?.kind === 'group') shared.add(groups.get(sel.name) ?? new Set());
      else if (sel?.kind === 'route') {
        if (routes) routes.add(sel.prefix);
        else errors.push(at.issue(`"${raw}" is a routed destination: ${ROUTE_ONLY_DST}`, [...path, i]));
      } else if (sel) {
        own.add(atomOf(sel));
        if (sel.kind === 'any') routes?.add(EXIT_ROUTE);
      }
    });
    return own.size > 0 ? [own, ...shared] : [...shared];
  };

  const owners = new Map<string, string[]>();
  for (const [tag, list] of tagOwners) {
    owners.set(
      tag,
      list.flatMap((raw, i) => {
        const sel = parseSelector(raw, true);
        const path = ['tagOwners', tag, i];
        if (typeof sel === 'string' || (sel.kind !== 'group' && sel.kind !== 'user')) {
          errors.push(at.issue(`a tag owner is group:NAME or user:EMAIL, not "${raw.slice(0, 40)}"`, path));
          return [];
        }
        if (sel.kind === 'group' && !rawGroups.has(sel.name)) {
          errors.push(at.issue(`unknown group "${sel.name}"`, path));
          return [];
        }
        return [sel.kind === 'user' ? `user:${sel.email}` : sel.name];
      }),
    );
  }

  const associations: PolicyAssociation[] = [];
  (file.associations ?? []).forEach((pair, index) => {
    const ends = pair.map((name, side) => {
      const i = blockIndex.get(name);
      if (i === undefined)
        errors.push(
          at.issue(`unknown block "${name.slice(0, 63)}" (not in cidrs)`, ['associations', index, side]),
        );
      return i;
    });
    const [a, b] = ends;
    if (a === undefined || b === undefined) return;
    const path = ['associations', index];
    associations.push({ index, a, b, text: at.source(path), ...at.position(path) });
  });

  // Distinct spans over every rule bound the spans any union of rules can have, so every access
  // the policy yields fits the wire's MAX_ACCESS_SPANS.
  const distinct = { tcp: new Set<string>(), udp: new Set<string>() };
  const tooMany = { tcp: false, udp: false };
  const rules: PolicyRule[] = [];
  const routed = new Set<string>();
  (file.rules ?? []).forEach((rule, index) => {
    // Gathered, then merged once: merging spec by spec is quadratic in a long list. The schema
    // passed, so every spec parses and indexes match the file's.
    const specs = (rule.ports ?? []).map((spec) => {
      const p = parsePortSpec(spec);
      return typeof p === 'string' ? NOTHING : p;
    });
    const ports: PortSet =
      rule.ports === undefined || specs.some(isEverything)
        ? EVERYTHING
        : {
            other: false,
            tcp: mergeSpans(specs.flatMap((p) => p.tcp)),
            udp: mergeSpans(specs.flatMap((p) => p.udp)),
            icmp: specs.some((p) => p.icmp),
          };
    specs.forEach((p, i) => {
      for (const proto of ['tcp', 'udp'] as const) {
        for (const s of p[proto]) distinct[proto].add(`${s[0]}-${s[1]}`);
        if (distinct[proto].size > MAX_ACCESS_SPANS && !tooMany[proto]) {
          tooMany[proto] = true;
          errors.push(
            at.issue(`more than ${MAX_ACCESS_SPANS} distinct ${proto} port ranges in the policy`, [
              'rules',
              index,
              'ports',
              i,
            ]),
          );
        }
      }
    });
    const path = ['rules', index];
    const dstRoutes = new Set<string>();
    rules.push({
      index,
      src: sideOf(rule.src, ['rules', index, 'src']),
      dst: sideOf(rule.dst, ['rules', index, 'dst'], dstRoutes),
      dstRoutes: [...dstRoutes].sort(),
      ports,
      text: at.source(path),
      ...at.position(path),
    });
    const before = routed.size;
    for (const p of dstRoutes) routed.add(p);
    if (routed.size > MAX_ROUTED_DESTINATIONS && before <= MAX_ROUTED_DESTINATIONS) {
      errors.push(
        at.issue(`more than ${MAX_ROUTED_DESTINATIONS} distinct routed destinations in the policy`, [
          ...path,
          'dst',
        ]),
      );
    }
  });

  const tests: PolicyTestCase[] = [];
  (file.tests ?? []).forEach((t, index) => {
    if (!DEVICE_NAME_RE.test(t.src) || t.src.length > 63) {
      errors.push(
        at.issue(`a test's src is a device name, not "${t.src.slice(0, 40)}"`, ['tests', index, 'src']),
      );
    }
    for (const expect of ['accept', 'deny'] as const) {
      (t[expect] ?? []).forEach((raw, i) => {
        const target = parseTestTarget(raw);
        if (typeof target === 'string') return; // the schema reported it
        const path = ['tests', index, expect, i];
        tests.push({ src: t.src, expect, target, text: raw, path, ...at.position(path) });
      });
    }
  });

  /**
   * An approver side: tags, users and groups of those only. Anybody may name a device (or enroll
   * one named like the gateway), so a name or `*` would let them approve their own routes.
   */
  const approverSide = (list: string[], path: IssuePath): ReadonlySet<Atom>[] => {
    list.forEach((raw, i) => {
      const sel = parseSelector(raw, false);
      const where = [...path, i];
      // Unparsable selectors and routed destinations: sideOf reports them.
      if (typeof sel === 'string' || sel.kind === 'route' || sel.kind === 'tag' || sel.kind === 'user')
        return;
      if (sel.kind === 'group') {
        const bad = [...(groups.get(sel.name) ?? [])].find((a) => !/^(tag|user):/.test(a));
        if (bad === undefined) return;
        const what = bad.startsWith('name:') ? `the device name "${bad.slice(5)}"` : `"${bad}"`;
        errors.push(
          at.issue(`${sel.name} holds ${what}: an approver group holds only users and tags`, where),
        );
        return;
      }
      errors.push(
        at.issue(`an approver is tag:NAME, group:NAME or user:EMAIL, not "${raw.slice(0, 40)}"`, where),
      );
    });
    return sideOf(list, path);
  };
  const approvers = file.autoApprovers;
  const autoApprovers: AutoApprovers = {
    routes: Object.entries(approvers?.routes ?? {}).map(([prefix, list]) => ({
      prefix,
      sets: approverSide(list, ['autoApprovers', 'routes', prefix]),
    })),
    exitNode: approverSide(approvers?.exitNode ?? [], ['autoApprovers', 'exitNode']),
  };

  if (errors.length > 0) return { errors, warnings };
  const policy: Policy = {
    text,
    groups,
    tagOwners: owners,
    blocks,
    associations,
    rules,
    tests,
    autoApprovers,
    deviceNames,
  };
  return { policy, errors, warnings };
}
