import { type AccessProtocol, IPV4_RE, ipv4InCidr, OVERLAY_PREFIX } from '@trellis/proto';
import { CompiledPolicy } from './compile';
import { deviceView, groundsOf, routedRules } from './match';
import { covers, isEmpty } from './ports';
import type { Policy, PolicyDevice, PolicyRule } from './types';

export interface ExplainReason {
  kind: 'rule' | 'cidr' | 'association';
  /** Index in `rules` or `associations`. */
  index?: number;
  line: number;
  text: string;
}

export interface Explanation {
  allowed: boolean;
  /** Every part of the policy that allows it (rules are a union: any one suffices). */
  reasons: ExplainReason[];
  /** Names (or ids) that matched no device. */
  missing?: string[];
}

export interface ExplainTarget {
  proto: AccessProtocol;
  /** tcp/udp only; absent: any port of the protocol. */
  port?: number;
}

/**
 * May `src` reach `dst` (on `target`), and why: `src` and `dst` are device names or ids; `dst` may
 * also be an address outside the overlay, reached through gateways (see `routed`). A device
 * never reaches itself through the mesh, so that is never allowed.
 */
export function explain(
  source: CompiledPolicy | { policy: Policy; devices: readonly PolicyDevice[] },
  src: string,
  dst: string,
  target?: ExplainTarget,
): Explanation {
  const policy = source.policy;
  const devices = source instanceof CompiledPolicy ? [...source.allDevices()] : source.devices;
  const find = (ref: string) => devices.find((d) => d.id === ref) ?? devices.find((d) => d.name === ref);
  const from = find(src);
  if (from && IPV4_RE.test(dst) && !ipv4InCidr(dst, OVERLAY_PREFIX)) return routed(policy, from, dst, target);
  const to = find(dst);
  if (!from || !to) {
    return { allowed: false, reasons: [], missing: [...(from ? [] : [src]), ...(to ? [] : [dst])] };
  }
  if (from.id === to.id) return { allowed: false, reasons: [] };

  const grounds = groundsOf(policy, deviceView(policy, from), deviceView(policy, to));
  const reasons: ExplainReason[] = [];
  if (grounds.sameBlock !== null) {
    const b = policy.blocks[grounds.sameBlock]!;
    reasons.push({
      kind: 'cidr',
      line: b.line,
      text: `both in block "${b.name}" (${b.cidr}), which sees itself`,
    });
  }
  for (const i of grounds.associations) {
    const a = policy.associations[i]!;
    reasons.push({ kind: 'association', index: i, line: a.line, text: a.text });
  }
  reasons.push(...ruleReasons(policy, grounds.rules, target));
  return { allowed: reasons.length > 0, reasons };
}

/**
 * `dst` an address outside the overlay: the rules whose routed destinations hold it, whether or
 * not a gateway serves it now.
 */
function routed(policy: Policy, from: PolicyDevice, dst: string, target?: ExplainTarget): Explanation {
  const reasons = ruleReasons(policy, routedRules(policy, deviceView(policy, from), dst), target);
  return { allowed: reasons.length > 0, reasons };
}

function ruleReasons(policy: Policy, rules: readonly number[], target?: ExplainTarget): ExplainReason[] {
  const fits = (r: PolicyRule) => (target ? covers(r.ports, target.proto, target.port) : !isEmpty(r.ports));
  return rules
    .map((i) => ({ i, r: policy.rules[i]! }))
    .filter(({ r }) => fits(r))
    .map(({ i, r }) => ({ kind: 'rule' as const, index: i, line: r.line, text: r.text }));
}
