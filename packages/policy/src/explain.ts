import type { AccessProtocol } from '@trellis/proto';
import { CompiledPolicy } from './compile';
import { deviceView, groundsOf } from './match';
import { covers, isEmpty } from './ports';
import type { Policy, PolicyDevice } from './types';

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
 * May `src` reach `dst` (on `target`), and why: `src` and `dst` are device names or ids. A device
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
  for (const i of grounds.rules) {
    const r = policy.rules[i]!;
    const fits = target ? covers(r.ports, target.proto, target.port) : !isEmpty(r.ports);
    if (fits) reasons.push({ kind: 'rule', index: i, line: r.line, text: r.text });
  }
  return { allowed: reasons.length > 0, reasons };
}
