import { API_PATHS, CreateVirtualDeviceRequest, type DeviceInfo } from '@trellis/proto';

/** POST: registers a LAN host behind a gateway (CreateVirtualDeviceRequest → DeviceInfo). */
export const VIRTUAL_DEVICES_PATH = `${API_PATHS.devices}/virtual`;

/** A LAN host reached through a gateway device: it has no key, endpoints or connection of its own. */
export function isVirtualDevice(d: Pick<DeviceInfo, 'via'>): boolean {
  return d.via !== null;
}

/** Comma-separated tags as typed, without blanks. */
export function tagList(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** Each listed device's name by id: how a virtual device's gateway is named without asking. */
export function namesById(rows: readonly DeviceInfo[]): Map<string, string> {
  return new Map(rows.map((d) => [d.id, d.name]));
}

/** Gateways the rows point at whose names are not known yet (each once). */
export function unknownGateways(rows: readonly DeviceInfo[], known: ReadonlyMap<string, unknown>): string[] {
  const ids = new Set<string>();
  for (const d of rows) if (d.via !== null && !known.has(d.via)) ids.add(d.via);
  return [...ids];
}

/** "via <gateway> · LAN <address>": the gateway by name where known, else by id. */
export function viaText(d: DeviceInfo, names: ReadonlyMap<string, string | null>): string {
  if (d.via === null) return '';
  const gateway = names.get(d.via) ?? d.via;
  return `via ${gateway} · LAN ${d.lanAddress ?? '?'}`;
}

/** Devices a virtual device may be put behind: approved devices of their own (a gateway runs Trellis). */
export function gatewayCandidates(rows: readonly DeviceInfo[]): DeviceInfo[] {
  return rows.filter((d) => !isVirtualDevice(d) && d.approved);
}

export interface VirtualDeviceFields {
  name: string;
  lanAddress: string;
  gateway: string;
  tags: string;
}

const FIELD_LABELS: Record<string, string> = {
  name: 'Name',
  lanAddress: 'LAN address',
  gateway: 'Gateway',
  tags: 'Tags',
};

/**
 * The request the form's fields make, checked by the proto schema the broker uses, so a mistake is
 * shown at once and by field; or the first problem, as the user would read it.
 */
export function virtualDeviceRequest(
  fields: VirtualDeviceFields,
): { request: CreateVirtualDeviceRequest } | { error: string } {
  const tags = tagList(fields.tags);
  const parsed = CreateVirtualDeviceRequest.safeParse({
    name: fields.name.trim(),
    lanAddress: fields.lanAddress.trim(),
    gateway: fields.gateway.trim(),
    ...(tags.length > 0 ? { tags } : {}),
  });
  if (parsed.success) return { request: parsed.data };
  const issue = parsed.error.issues[0];
  if (!issue) return { error: 'invalid virtual device' };
  const field = String(issue.path[0] ?? '');
  const label = FIELD_LABELS[field] ?? field;
  const message =
    field === 'gateway' && issue.code === 'too_small' ? 'choose a gateway device' : issue.message;
  return { error: label ? `${label}: ${message}` : message };
}

/** Why the typed gateway cannot be one, judged from the devices fetched for it; null: let the broker decide. */
export function gatewayProblem(rows: readonly DeviceInfo[], gateway: string): string | null {
  const named = rows.find((d) => d.name === gateway.trim());
  if (named && isVirtualDevice(named))
    return `Gateway: ${named.name} is a virtual device; choose one running Trellis`;
  if (named && !named.approved) return `Gateway: ${named.name} is still awaiting approval`;
  return null;
}
