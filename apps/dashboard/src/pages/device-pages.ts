import {
  API_PATHS,
  compareNames,
  DASHBOARD_EVENTS,
  DeviceInfo,
  DeviceListPage,
  type DeviceListQuery,
  DeviceRemovedEvent,
  deviceMatches,
} from '@trellis/proto';
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '../api';

/** Devices fetched per request: a few screens' worth. */
export const PAGE_SIZE = 200;

export type DeviceFilter = Pick<DeviceListQuery, 'q' | 'status'>;

export interface LoadedDevices {
  /** The devices fetched so far, in name order: the first pages of the filtered list. */
  rows: DeviceInfo[];
  /** How many devices match the filter (fetched or not). */
  matched: number;
  /** The broker has more pages after `rows`. */
  more: boolean;
}

/**
 * `d` as an event brings it, put into the fetched rows: replaced where it was, dropped if it no
 * longer matches the filter, added if it matches and sorts within what was fetched (after the last
 * fetched row it belongs to a page not fetched yet).
 */
export function withDevice(list: LoadedDevices, d: DeviceInfo, filter: DeviceFilter): LoadedDevices {
  const had = list.rows.some((x) => x.id === d.id);
  const rest = had ? list.rows.filter((x) => x.id !== d.id) : list.rows;
  const last = list.rows[list.rows.length - 1];
  const inRange = !list.more || (last !== undefined && compareNames(d.name, last.name) <= 0);
  if (!deviceMatches(filter, d) || !inRange) {
    return had ? { ...list, rows: rest, matched: list.matched - 1 } : list;
  }
  const rows = [...rest, d].sort((a, b) => compareNames(a.name, b.name));
  return { ...list, rows, matched: had ? list.matched : list.matched + 1 };
}

export function withoutDevice(list: LoadedDevices, id: string): LoadedDevices {
  if (!list.rows.some((x) => x.id === id)) return list;
  return { ...list, rows: list.rows.filter((x) => x.id !== id), matched: list.matched - 1 };
}

function listPath(filter: DeviceFilter, after: string | undefined): string {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const q = filter.q?.trim();
  if (q) params.set('q', q);
  if (filter.status) params.set('status', filter.status);
  if (after !== undefined) params.set('after', after);
  return `${API_PATHS.deviceList}?${params}`;
}

/**
 * The device list, fetched a page at a time as the user scrolls (`more()`), kept live by the
 * broker's events. A new filter, or the event stream (re)opening, starts again from the first page,
 * so nothing missed while the stream was down stays missed; an answer for an older filter is dropped.
 */
export function useDevicePages(filter: DeviceFilter) {
  const [list, setList] = useState<LoadedDevices | null>(null);
  const [error, setError] = useState<string | null>(null);
  const generation = useRef(0);
  const loading = useRef(false);
  const next = useRef<string | null>(null);
  const filterRef = useRef(filter);
  filterRef.current = filter;

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    loading.current = true;
    try {
      const page = await api('GET', listPath(filterRef.current, undefined), DeviceListPage);
      if (mine !== generation.current) return;
      next.current = page.next;
      setList({ rows: page.devices, matched: page.matched, more: page.next !== null });
      setError(null);
    } catch (err) {
      if (mine === generation.current) setError((err as Error).message);
    } finally {
      if (mine === generation.current) loading.current = false;
    }
  }, []);

  const more = useCallback(async () => {
    const after = next.current;
    if (loading.current || after === null) return;
    const mine = generation.current;
    loading.current = true;
    try {
      const page = await api('GET', listPath(filterRef.current, after), DeviceListPage);
      if (mine !== generation.current) return;
      next.current = page.next;
      setList((l) => {
        const known = new Set((l?.rows ?? []).map((d) => d.id));
        const rows = [...(l?.rows ?? []), ...page.devices.filter((d) => !known.has(d.id))];
        return { rows, matched: page.matched, more: page.next !== null };
      });
    } catch (err) {
      if (mine === generation.current) setError((err as Error).message);
    } finally {
      if (mine === generation.current) loading.current = false;
    }
  }, []);

  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter value is what restarts the list
  useEffect(() => {
    void reload();
  }, [reload, filter.q, filter.status]);

  useEffect(() => {
    const events = new EventSource(API_PATHS.events);
    events.addEventListener('open', () => void reload());
    events.addEventListener(DASHBOARD_EVENTS.device, (e) => {
      const d = DeviceInfo.safeParse(JSON.parse((e as MessageEvent<string>).data));
      if (d.success) setList((l) => (l ? withDevice(l, d.data, filterRef.current) : l));
    });
    events.addEventListener(DASHBOARD_EVENTS.removed, (e) => {
      const r = DeviceRemovedEvent.safeParse(JSON.parse((e as MessageEvent<string>).data));
      if (r.success) setList((l) => (l ? withoutDevice(l, r.data.id) : l));
    });
    return () => events.close();
  }, [reload]);

  /** A device this page itself added or changed, drawn without waiting for its event. */
  const upsert = useCallback((d: DeviceInfo) => {
    setList((l) => (l ? withDevice(l, d, filterRef.current) : l));
  }, []);

  return { list, error, reload, more, upsert };
}
