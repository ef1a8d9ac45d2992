import type {
  AdminRequest,
  CreateRelayTokenResponse,
  DeviceInfo,
  InstanceInfo,
  RelayStatusInfo,
  RelayTokenInfo,
  SetupKeyInfo,
} from '@trellis/proto';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
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

function keyRows(keys: SetupKeyInfo[]): string {
  return table([
    ['ID', 'NAME', 'PREFIX', 'REUSABLE', 'USED', 'LIMIT', 'EXPIRES', 'VALID'],
    ...keys.map((k) => [
      k.id,
      k.name,
      k.prefix,
      String(k.reusable),
      String(k.usedCount),
      k.usageLimit === null ? '-' : String(k.usageLimit),
      k.expiresAt ?? 'never',
      k.revokedAt ? 'revoked' : String(k.valid),
    ]),
  ]);
}

function deviceRows(devices: DeviceInfo[]): string {
  return table([
    ['ID', 'NAME', 'ADDRESS', 'HOSTNAME', 'OS', 'ONLINE', 'LAST SEEN'],
    ...devices.map((d) => [d.id, d.name, d.address, d.hostname, d.os, String(d.online), d.lastSeen ?? '-']),
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

/** Human-readable rendering of an admin result; `--json` prints the result itself instead. */
export function renderResult(op: AdminRequest['op'], result: unknown): string {
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
      const rows = result as Array<{ id: string; name: string; createdAt: string }>;
      return table([['ID', 'NAME', 'CREATED'], ...rows.map((a) => [a.id, a.name, a.createdAt])]);
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
  }
}
