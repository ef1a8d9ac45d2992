import { EXIT_ROUTE, type GatewayStatus } from '@trellis/proto';

const label = (prefix: string) => (prefix === EXIT_ROUTE ? 'exit node' : prefix);

/**
 * The Gateway part of `trellis status`: what it offers, the routes it uses, the virtual devices it
 * serves, the exit node. Empty when none.
 */
export function gatewayLines(g: GatewayStatus | undefined): string[] {
  if (!g) return [];
  const lines: string[] = [];
  if (g.advertised.length > 0) {
    const items = g.advertised.map((a) => {
      const notes = [
        a.approved === undefined
          ? 'not confirmed by the broker'
          : a.approved
            ? 'approved'
            : 'awaiting approval',
        ...(a.down ? ['LAN DOWN'] : []),
      ];
      return `${label(a.prefix)} (${notes.join(', ')})`;
    });
    lines.push(`advertise:  ${items.join(', ')}`);
    if (g.advertised.some((a) => a.prefix !== EXIT_ROUTE)) {
      lines.push(
        `            ${g.prefs.snatRoutes ? 'masquerading' : 'not masquerading (--snat-routes false)'} into the LAN`,
      );
    }
  }
  if (!g.prefs.acceptRoutes)
    lines.push("routes:     other devices' routes not accepted (--accept-routes false)");
  const rows = g.routes.filter((r) => g.prefs.acceptRoutes || r.installed);
  for (const [i, r] of rows.entries()) {
    const head = i === 0 && g.prefs.acceptRoutes ? 'routes:     ' : '            ';
    const gateways = r.gateways.map((gw) => `${gw.name}${gw.alive ? '' : ' (dead)'}`).join(', ');
    if (r.via) lines.push(`${head}${r.prefix} via ${r.via}  [gateways: ${gateways}]`);
    else lines.push(`${head}${r.prefix} not used: ${r.reason ?? 'no gateway'}  [gateways: ${gateways}]`);
  }
  for (const [i, v] of (g.virtualDevices ?? []).entries()) {
    const head = i === 0 ? 'serves:     ' : '            ';
    const state = v.served ? 'served' : `NOT SERVED: ${v.reason ?? 'unknown'}`;
    lines.push(`${head}${v.name} ${v.address} -> LAN ${v.lanAddress}, ${state}`);
  }
  const e = g.exitNode;
  if (e) {
    const lan = e.allowLan ? 'LAN reachable directly' : 'LAN through the exit node too';
    lines.push(
      e.state === 'active'
        ? `exit node:  ${e.name}, active (${lan})`
        : `exit node:  ${e.name}, BLOCKED: ${e.reason ?? 'not usable'}`,
    );
  }
  return lines;
}
