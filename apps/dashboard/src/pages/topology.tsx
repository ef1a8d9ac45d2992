import {
  API_PATHS,
  DASHBOARD_EVENTS,
  DeviceInfo,
  DeviceRemovedEvent,
  PathChangedEvent,
  TopologyResponse,
} from '@trellis/proto';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ZodType } from 'zod';
import { api } from '../api';
import { ErrorLine, ListTable } from '../components';
import { describe, TopologyPicture } from './topology-picture';
import { applyDevice, applyPathEvent, pathsOf, removeDevice, type Topology } from './topology-state';

/** `/topology?device=<id>` opens with that device's paths shown (the devices page links here). */
function deviceInAddress(): string | null {
  return new URLSearchParams(location.search).get('device');
}

/**
 * The live topology: devices and the path between each pair, as their agents report them, kept
 * current by the dashboard's event stream. A click on a device lists its path to each peer.
 */
export function TopologyPage() {
  const [topo, setTopo] = useState<Topology | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(deviceInAddress);
  // The latest topology, for event handlers that must know now whether a path's devices are known.
  const current = useRef<Topology | null>(null);
  current.current = topo;

  const reload = useCallback(async () => {
    try {
      setTopo(await api('GET', API_PATHS.topology, TopologyResponse));
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, []);

  useEffect(() => {
    const events = new EventSource(API_PATHS.events);
    // (Re)connected: whatever changed while the stream was down is read in full.
    events.addEventListener('open', () => void reload());
    const parsed = <T,>(e: Event, schema: ZodType<T>): T | null => {
      const r = schema.safeParse(JSON.parse((e as MessageEvent<string>).data));
      return r.success ? r.data : null;
    };
    events.addEventListener(DASHBOARD_EVENTS.path, (e) => {
      const ev = parsed(e, PathChangedEvent);
      const t = current.current;
      if (!ev || !t) return;
      const next = applyPathEvent(t, ev);
      // A path to a device this page has not got (a member's new peer): read it all again.
      if (next === null) void reload();
      else setTopo((now) => (now === t ? next : now && (applyPathEvent(now, ev) ?? now)));
    });
    events.addEventListener(DASHBOARD_EVENTS.device, (e) => {
      const d = parsed(e, DeviceInfo);
      if (d) setTopo((t) => (t ? applyDevice(t, d) : t));
    });
    events.addEventListener(DASHBOARD_EVENTS.removed, (e) => {
      const r = parsed(e, DeviceRemovedEvent);
      if (r) setTopo((t) => (t ? removeDevice(t, r.id) : t));
    });
    return () => events.close();
  }, [reload]);

  const select = (id: string) => {
    setSelected(id);
    history.replaceState(null, '', `/topology?device=${encodeURIComponent(id)}`);
  };
  const focus = topo?.nodes.find((n) => n.id === selected) ?? null;
  const count = (kind: string) => topo?.edges.filter((e) => e.kind === kind).length ?? 0;
  return (
    <section>
      <h1>Topology</h1>
      <ErrorLine error={error} />
      {topo === null ? (
        <p>Loading…</p>
      ) : topo.nodes.length === 0 ? (
        <p>No devices yet.</p>
      ) : (
        <>
          <p className="sub" data-testid="topology-summary">
            {topo.nodes.length} devices ({topo.nodes.filter((n) => n.online).length} online); paths:{' '}
            {count('direct')} direct, {count('relayed')} relayed, {count('connecting')} connecting
          </p>
          <Legend />
          <div className="topology-view">
            <TopologyPicture nodes={topo.nodes} edges={topo.edges} selected={selected} onSelect={select} />
            <aside className="topology-paths" data-testid="peer-paths">
              {focus ? (
                <>
                  <h2>
                    Paths of {focus.name} <span className="sub">{focus.online ? 'online' : 'offline'}</span>
                  </h2>
                  {pathsOf(topo, focus.id).length === 0 ? (
                    <p>No path in use to any peer.</p>
                  ) : (
                    <ListTable columns={['Peer', 'Path', 'Since']}>
                      {pathsOf(topo, focus.id).map(({ peer, edge }) => (
                        <tr key={peer.id} data-peer={peer.name}>
                          <td>{peer.name}</td>
                          <td className={`path-${edge.kind}`}>{describe(edge)}</td>
                          <td>{new Date(edge.since).toLocaleTimeString()}</td>
                        </tr>
                      ))}
                    </ListTable>
                  )}
                </>
              ) : (
                <p>Click a device to see its path to each peer.</p>
              )}
            </aside>
          </div>
        </>
      )}
    </section>
  );
}

function Legend() {
  const item = (kind: string, label: string) => (
    <span className="legend-item">
      <svg width="40" height="10" aria-hidden="true" className={`edge ${kind}`}>
        <line x1="2" y1="5" x2="38" y2="5" />
      </svg>
      {label}
    </span>
  );
  return (
    <p className="legend">
      {item('direct', 'direct')}
      {item('relayed', 'relayed (relay named)')}
      {item('connecting', 'connecting')}
      <span className="legend-item">
        <svg width="14" height="14" aria-hidden="true" className="node offline">
          <circle cx="7" cy="7" r="6" />
        </svg>
        offline
      </span>
    </p>
  );
}
