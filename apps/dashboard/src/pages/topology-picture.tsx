import type { TopologyEdge, TopologyNode } from '@trellis/proto';
import { useMemo } from 'react';
import { circleLayout } from './topology-layout';

const NODE_RADIUS = 18;

export interface TopologyPictureProps {
  nodes: readonly TopologyNode[];
  edges: readonly TopologyEdge[];
  selected: string | null;
  onSelect(id: string): void;
}

/**
 * The devices as circles (grey when offline, outlined when only a member's peer) and their paths as
 * lines: direct solid, relayed dashed with the relay's name, being tried dotted. Positions depend
 * only on the devices' ids (circleLayout), so live changes never move a node.
 */
export function TopologyPicture({ nodes, edges, selected, onSelect }: TopologyPictureProps) {
  const layoutKey = nodes
    .map((n) => n.id)
    .sort()
    .join(',');
  // biome-ignore lint/correctness/useExhaustiveDependencies: laid out again only when the set of devices changes
  const { size, placed } = useMemo(() => circleLayout(nodes), [layoutKey]);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return (
    <svg
      className="topology"
      viewBox={`0 0 ${size} ${size}`}
      role="img"
      aria-label={`${nodes.length} devices and ${edges.length} paths`}
      data-testid="topology"
    >
      <g>
        {edges.map((e) => {
          const a = placed.get(e.a);
          const b = placed.get(e.b);
          const na = byId.get(e.a);
          const nb = byId.get(e.b);
          if (!a || !b || !na || !nb) return null;
          const touches = selected !== null && (e.a === selected || e.b === selected);
          return (
            <g
              key={`${e.a}|${e.b}`}
              className={`edge ${e.kind}${touches ? ' selected' : ''}`}
              data-edge={[na.name, nb.name].sort().join(' ')}
              data-kind={e.kind}
            >
              <title>{`${na.name} – ${nb.name}: ${describe(e)}`}</title>
              <line x1={a.x} y1={a.y} x2={b.x} y2={b.y} />
              {e.kind === 'relayed' && e.relay && (
                <text x={(a.x + b.x) / 2} y={(a.y + b.y) / 2 - 6} textAnchor="middle" className="relay-name">
                  {e.relay}
                </text>
              )}
            </g>
          );
        })}
      </g>
      <g>
        {nodes.map((n) => {
          const p = placed.get(n.id);
          if (!p) return null;
          const cls = [
            'node',
            n.online ? 'online' : 'offline',
            n.peerOnly ? 'peer-only' : '',
            n.id === selected ? 'selected' : '',
          ];
          return (
            // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>; it acts as one
            <g
              key={n.id}
              className={cls.filter(Boolean).join(' ')}
              data-node={n.name}
              data-online={n.online}
              transform={`translate(${p.x} ${p.y})`}
              role="button"
              tabIndex={0}
              aria-pressed={n.id === selected}
              aria-label={`${n.name}, ${n.online ? 'online' : 'offline'}`}
              onClick={() => onSelect(n.id)}
              onKeyDown={(ev) => {
                if (ev.key === 'Enter' || ev.key === ' ') onSelect(n.id);
              }}
            >
              <circle r={NODE_RADIUS} />
              <text y={NODE_RADIUS + 16} textAnchor="middle" className="node-name">
                {n.name}
              </text>
              <text y={NODE_RADIUS + 30} textAnchor="middle" className="node-address">
                {n.address}
              </text>
            </g>
          );
        })}
      </g>
    </svg>
  );
}

export function describe(e: TopologyEdge): string {
  if (e.kind === 'relayed') return e.relay ? `relayed through ${e.relay}` : 'relayed';
  return e.kind === 'direct' ? 'direct' : 'connecting';
}
