import { describeAccessRules, type StatusResponse } from '@trellis/proto';
import { gatewayLines } from './format-gateway';

/** `12s ago`, `3m ago`, `2h ago`, `4d ago`, or `never`. */
export function formatAgo(iso: string | null, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Binary units as `wg` prints them: `0 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

const PATH_LABELS = {
  'direct-lan': 'direct LAN',
  'direct-internet': 'direct internet',
  relay: 'relay',
  none: 'none',
} as const;

export function formatStatus(s: StatusResponse, now = Date.now()): string {
  const lines: string[] = [];
  const self = s.self;
  lines.push(`state:      ${s.state}`);
  if (s.signIn) {
    const until = new Date(s.signIn.expiresAt).toLocaleTimeString();
    lines.push(`sign in:    ${s.signIn.verificationUri}  code ${s.signIn.userCode}  (until ${until})`);
  }
  if (self) {
    lines.push(`device:     ${self.name} (${self.dnsName})`);
    lines.push(`address:    ${self.address}  overlay ${self.overlayPrefix}`);
  }
  const at = s.broker.address ? ` (${s.broker.address})` : '';
  const broker = s.broker.url ? `${s.broker.url}${at}` : '(not enrolled)';
  const conn = s.broker.connected
    ? 'connected'
    : `not connected${s.broker.lastError ? `: ${s.broker.lastError}` : ''}`;
  lines.push(`broker:     ${broker}  ${s.broker.url ? conn : ''}`.trimEnd());
  const urls = s.broker.urls ?? [];
  if (urls.length > 1) lines.push(`brokers:    ${urls.join(', ')}`);
  lines.push(
    `interface:  ${s.interface.name} (${s.interface.backend}) port ${s.interface.listenPort}` +
      `  key ${s.interface.publicKey ?? '-'}`,
  );
  const virtual = s.virtual ?? [];
  const vds = virtual.length > 0 ? `, ${virtual.length} virtual devices` : '';
  lines.push(
    `netmap:     serial ${s.netmapSerial ?? '-'} from ${s.netmapSource}, ${s.peers.length} peers${vds}`,
  );
  lines.push(...guardLines(s, now));
  if (s.dns) lines.push(dnsLine(s.dns));
  lines.push(...gatewayLines(s.gateway));
  if (s.peers.length > 0) lines.push(...peerLines(s, now));
  if (virtual.length > 0) lines.push('', ...virtualLines(virtual));
  return `${lines.join('\n')}\n`;
}

/** The peers' table, and what each may open here and be opened there. */
function peerLines(s: StatusResponse, now: number): string[] {
  const lines = [''];
  const rows = [
    ['PEER', 'DNS NAME', 'ADDRESS', 'ENDPOINT', 'CANDIDATES', 'HANDSHAKE', 'RX', 'TX', 'ONLINE', 'PATH'],
  ];
  for (const p of s.peers) {
    const label = p.path === 'relay' ? `relay ${p.relayName ?? '?'}` : p.path && PATH_LABELS[p.path];
    const path = label === undefined ? '-' : `${label} since ${formatAgo(p.pathSince ?? null, now)}`;
    rows.push([
      p.name,
      p.dnsName,
      p.address,
      p.endpoint ?? '-',
      p.candidates.join(',') || '-',
      formatAgo(p.lastHandshake, now),
      formatBytes(p.rxBytes),
      formatBytes(p.txBytes),
      p.online ? 'yes' : 'no',
      path,
    ]);
  }
  lines.push(...table(rows));
  const access = s.peers.filter((p) => p.access);
  if (access.length > 0) {
    lines.push('');
    lines.push(
      ...table([
        ['PEER', 'MAY OPEN HERE', 'MAY BE OPENED THERE'],
        ...access.map((p) => [
          p.refused ? `${p.name} (REFUSED)` : p.name,
          describeAccessRules(p.access!.in),
          describeAccessRules(p.access!.out),
        ]),
      ]),
    );
  }
  return lines;
}

/** LAN hosts behind gateways: each one's gateway, and whether it is reached now or why not. */
function virtualLines(virtual: NonNullable<StatusResponse['virtual']>): string[] {
  return table([
    ['VIRTUAL DEVICE', 'DNS NAME', 'ADDRESS', 'VIA', 'REACHABLE'],
    ...virtual.map((v) => [
      v.name,
      v.dnsName,
      v.address,
      v.via ?? '-',
      v.reachable ? 'yes' : `no: ${v.reason ?? 'unknown'}`,
    ]),
  ]);
}

const RESOLVERS: Record<NonNullable<StatusResponse['dns']>['resolver'], string> = {
  resolved: 'via systemd-resolved',
  'resolv-conf': 'via resolv.conf',
  nrpt: 'via an NRPT rule',
  'resolver-dir': 'via /etc/resolver',
  none: '(--dns stub: the OS resolver is not pointed at it)',
};

function dnsLine(d: NonNullable<StatusResponse['dns']>): string {
  if (!d.listen) return `dns:        ${d.domain || '-'} not served: ${d.lastError ?? 'starting'}`;
  const others = d.upstreams.length > 0 ? `, other names to ${d.upstreams.join(', ')}` : '';
  const error = d.lastError ? ` (error: ${d.lastError})` : '';
  return `dns:        ${d.domain} answered at ${d.listen} ${RESOLVERS[d.resolver]}${others}${error}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

/** Firewall state, refused peers (loudly) and accepted key changes. */
function guardLines(s: StatusResponse, now: number): string[] {
  const g = s.guard;
  if (!g) return [];
  const lines: string[] = [];
  const fw = g.firewall;
  if (!fw) lines.push('firewall:   OFF (the access policy is not enforced on this device)');
  else if (fw.lastError) lines.push(`firewall:   ${fw.backend}, FAILED: ${fw.lastError}`);
  else if (fw.lastApply) {
    const cut = fw.lastApply.cut > 0 ? `, ${fw.lastApply.cut} flows cut` : '';
    lines.push(
      `firewall:   ${fw.backend}, applied ${formatAgo(fw.lastApply.at, now)} (${fw.lastApply.mode}${cut})`,
    );
  } else lines.push(`firewall:   ${fw.backend}, not applied yet`);
  for (const r of g.refused) {
    lines.push(
      `REFUSED:    ${r.name} (${r.address}) offers key ${r.offeredKey}, pinned ${r.pinnedKey}: ${r.reason}` +
        ` (since ${formatAgo(r.since, now)})`,
    );
  }
  for (const c of g.keyChanges) {
    lines.push(`key change: ${c.name} (${c.address}) ${c.kind} ${formatAgo(c.acceptedAt, now)}`);
  }
  return lines;
}
