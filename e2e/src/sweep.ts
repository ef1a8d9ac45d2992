import { readdirSync, rmSync } from 'node:fs';
import { execQuiet } from './exec';
import { isAlive, ownerPid } from './names';

export const WG_SOCKET_DIR = '/var/run/wireguard';

/** Lab namespaces currently present (any owner). */
export function labNamespaces(): string[] {
  const { stdout } = execQuiet(null, ['ip', 'netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter((n) => n !== '' && ownerPid(n) !== null);
}

/** Kills every process inside `ns` (they can only be ours: we created it) and deletes it. */
export function deleteNamespace(ns: string): void {
  const { stdout } = execQuiet(null, ['ip', 'netns', 'pids', ns]);
  for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  execQuiet(null, ['ip', 'netns', 'del', ns]);
}

/** wireguard-go control sockets present now (interface names). */
export function listWgSockets(): string[] {
  try {
    return readdirSync(WG_SOCKET_DIR).map((f) => f.replace(/\.(sock|name)$/, ''));
  } catch {
    return [];
  }
}

/** Removes wireguard-go control sockets left by a killed lab whose names match `accept`. */
export function removeWgSockets(accept: (ifname: string) => boolean): string[] {
  let entries: string[];
  try {
    entries = readdirSync(WG_SOCKET_DIR);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of entries) {
    const ifname = f.replace(/\.(sock|name)$/, '');
    if (!accept(ifname)) continue;
    rmSync(`${WG_SOCKET_DIR}/${f}`, { force: true });
    removed.push(f);
  }
  return removed;
}

/**
 * Deletes what earlier lab runs left behind: namespaces (and the veths/bridges inside them),
 * processes inside those namespaces, and wireguard-go sockets, but only where the owning pid
 * encoded in the name is dead. Returns what it removed.
 */
export function sweepStale(): string[] {
  const stale = (name: string) => {
    const pid = ownerPid(name);
    return pid !== null && !isAlive(pid);
  };
  const removed: string[] = [];
  for (const ns of labNamespaces().filter(stale)) {
    deleteNamespace(ns);
    removed.push(ns);
  }
  removed.push(...removeWgSockets(stale));
  return removed;
}
