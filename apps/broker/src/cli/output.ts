import type {
  AdminRequest,
  CreateRelayTokenResponse,
  DeviceInfo,
  InstanceInfo,
  PolicyApplyResult,
  PolicyCheckResult,
  PolicyDocument,
  PolicyExplainResult,
  PolicyPlanResult,
  PolicyVersionInfo,
  RelayStatusInfo,
  RelayTokenInfo,
  RouteRow,
  SetupKeyInfo,
} from '@trellis/proto';
import { EXIT_ROUTE } from '@trellis/proto';
import {
  formatApply,
  formatCheck,
  formatExplain,
  formatHistory,
  formatPlan,
  formatTags,
  NO_FILE_LABEL,
  policyTextForOut,
} from './policy-output';

export interface CliIo {
  /** One line (or lines): a newline is added. */
  out(text: string): void;
  err(text: string): void;
  /** Output exactly as given (a policy text, byte for byte); without it, `out` is used. */
  write?(text: string): void;
  /** Where `-` (a file read from standard input) reads; process.stdin when absent. */
  stdin?: NodeJS.ReadableStream;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Tags and the like in one cell: `tag:a,tag:b`, or `-`. */
const list = (items: readonly string[]) => (items.length === 0 ? '-' : items.join(','));

function keyRows(keys: SetupKeyInfo[]): string {
  return table([
    ['ID', 'NAME', 'PREFIX', 'REUSABLE', 'USED', 'LIMIT', 'EXPIRES', 'TAGS', 'CIDR', 'VALID'],
    ...keys.map((k) => [
      k.id,
      k.name,
      k.prefix,
      String(k.reusable),
      String(k.usedCount),
      k.usageLimit === null ? '-' : String(k.usageLimit),
      k.expiresAt ?? 'never',
      list(k.tags),
      k.cidr ?? '-',
      k.revokedAt ? 'revoked' : String(k.valid),
    ]),
  ]);
}

function deviceRows(devices: DeviceInfo[]): string {
  return table([
    ['ID', 'NAME', 'ADDRESS', 'HOSTNAME', 'OS', 'TAGS', 'USER', 'ONLINE', 'LAST SEEN'],
    ...devices.map((d) => [
      d.id,
      d.name,
      d.address,
      d.hostname,
      d.os,
      list(d.tags),
      d.user ?? '-',
      String(d.online),
      d.lastSeen ?? '-',
    ]),
  ]);
}

function routeRows(routes: RouteRow[]): string {
  if (routes.length === 0) return 'no routes';
  return table([
    ['DEVICE', 'PREFIX', 'ADVERTISED', 'APPROVED', 'STATE', 'PRIMARY', 'SINCE'],
    ...routes.map((r) => [
      r.deviceName,
      r.prefix === EXIT_ROUTE ? `${r.prefix} (exit node)` : r.prefix,
      String(r.advertised),
      r.approved ? (r.autoApproved ? 'auto' : 'true') : 'false',
      r.down ? 'down' : r.online ? 'online' : 'offline',
      String(r.primary),
      r.since ?? '-',
    ]),
  ]);
}

function relayTokenRows(tokens: RelayTokenInfo[]): string {
  return table([
    ['ID', 'NAME', 'ACCOUNT', 'PREFIX', 'CREATED', 'LAST USED', 'STATE'],
    ...tokens.map((t) => [
      t.id,
      t.name,
      t.accountName ?? '(shared)',
      t.prefix,
      t.createdAt,
      t.lastUsedAt ?? 'never',
      t.revokedAt ? 'revoked' : 'valid',
    ]),
  ]);
}

function relayRows(relays: RelayStatusInfo[]): string {
  return table([
    ['ID', 'NAME', 'ACCOUNT', 'ADDRESS', 'ONLINE', 'ALLOCATIONS', 'LAST SEEN'],
    ...relays.map((r) => [
      r.id,
      r.name,
      r.accountName ?? '(shared)',
      r.publicAddress,
      String(r.online),
      String(r.allocations),
      r.lastSeenAt ?? '-',
    ]),
  ]);
}

function instanceRows(instances: InstanceInfo[]): string {
  return table([
    ['ID', 'URL', 'VERSION', 'STARTED', 'LEASE EXPIRES', 'LIVE'],
    ...instances.map((i) => [i.id, i.url, i.version, i.startedAt, i.expiresAt, String(i.live)]),
  ]);
}

/**
 * Human-readable rendering of an admin result; `--json` prints the result itself instead. `req`,
 * when given, names what the result is about (the source and destination of an explain).
 */
export function renderResult(op: AdminRequest['op'], result: unknown, req?: AdminRequest): string {
  switch (op) {
    case 'accounts.create': {
      const r = result as {
        account: { id: string; name: string };
        owner: { email: string };
        generatedPassword?: string;
      };
      const lines = [`account ${r.account.name} created (id ${r.account.id})`, `owner: ${r.owner.email}`];
      if (r.generatedPassword) lines.push(`owner password (shown once): ${r.generatedPassword}`);
      return lines.join('\n');
    }
    case 'accounts.resetOwner': {
      const r = result as { email: string; generatedPassword?: string };
      const lines = [`owner ${r.email}: password reset, signed out everywhere`];
      if (r.generatedPassword) lines.push(`owner password (shown once): ${r.generatedPassword}`);
      return lines.join('\n');
    }
    case 'accounts.list': {
      const rows = result as Array<{ id: string; name: string; createdAt: string; dnsMeshOnly: boolean }>;
      return table([
        ['ID', 'NAME', 'CREATED', 'DNS'],
        ...rows.map((a) => [a.id, a.name, a.createdAt, a.dnsMeshOnly ? 'mesh-only' : 'public']),
      ]);
    }
    case 'accounts.dns': {
      const a = result as { name: string; dnsMeshOnly: boolean };
      return a.dnsMeshOnly
        ? `account ${a.name}: device names answered only to its own devices (mesh-only)`
        : `account ${a.name}: device names answered to anyone (public)`;
    }
    case 'users.create': {
      const r = result as { id: string; email: string; role: string; generatedPassword?: string };
      const lines = [`user ${r.email} created with role ${r.role} (id ${r.id})`];
      if (r.generatedPassword) lines.push(`password (shown once): ${r.generatedPassword}`);
      return lines.join('\n');
    }
    case 'setupKeys.create': {
      const r = result as { key: string; setupKey: SetupKeyInfo };
      return `setup key (shown once): ${r.key}\n${keyRows([r.setupKey])}`;
    }
    case 'setupKeys.list':
      return keyRows(result as SetupKeyInfo[]);
    case 'setupKeys.revoke':
      return `setup key ${(result as SetupKeyInfo).id} revoked`;
    case 'devices.list':
      return deviceRows(result as DeviceInfo[]);
    case 'devices.remove': {
      const d = result as DeviceInfo;
      return `device ${d.name} (${d.id}, ${d.address}) removed`;
    }
    case 'devices.tag':
      return formatTags(result as DeviceInfo);
    case 'devices.rename': {
      const d = result as DeviceInfo;
      return `device ${d.id} is now ${d.name} (${d.dnsName})`;
    }
    case 'devices.addVirtual': {
      const d = result as DeviceInfo;
      return (
        `virtual device ${d.name} (${d.id}) added: ${d.dnsName} ${d.address} -> ${d.lanAddress} ` +
        `via gateway ${d.via}\n${deviceRows([d])}`
      );
    }
    case 'devices.rekey': {
      const d = result as DeviceInfo;
      return `device ${d.name} (${d.id}) re-keyed: its public key is now ${d.publicKey}`;
    }
    case 'policy.get':
      return policyTextForOut((result as PolicyDocument).text);
    case 'policy.check':
      return formatCheck(NO_FILE_LABEL, result as PolicyCheckResult);
    case 'policy.plan':
      return formatPlan(NO_FILE_LABEL, result as PolicyPlanResult);
    case 'policy.apply':
      return formatApply(NO_FILE_LABEL, result as PolicyApplyResult);
    case 'policy.history':
      return formatHistory(result as PolicyVersionInfo[], table);
    case 'policy.rollback':
      return formatApply(
        NO_FILE_LABEL,
        result as PolicyApplyResult,
        req?.op === 'policy.rollback' ? req.version : undefined,
      );
    case 'policy.explain': {
      const names = req?.op === 'policy.explain' ? req : { src: 'SRC', dst: 'DST' };
      return formatExplain(names.src, names.dst, result as PolicyExplainResult);
    }
    case 'relayTokens.create': {
      const r = result as CreateRelayTokenResponse;
      return `relay token (shown once): ${r.token}\n${relayTokenRows([r.relayToken])}`;
    }
    case 'relayTokens.list':
      return relayTokenRows(result as RelayTokenInfo[]);
    case 'relayTokens.revoke':
      return `relay token ${(result as RelayTokenInfo).id} revoked`;
    case 'relays.list':
      return relayRows(result as RelayStatusInfo[]);
    case 'instances.list':
      return instanceRows(result as InstanceInfo[]);
    case 'routes.list':
    case 'routes.approve':
    case 'routes.unapprove':
      return routeRows(result as RouteRow[]);
  }
}
