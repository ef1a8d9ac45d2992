import { API_PATHS, type GatewayStatus, LoginResponse, RouteList, type RouteRow } from '@trellis/proto';
import type { Namespace } from '../namespace';
import { waitFor } from '../wait';
import { LAB_ACCOUNT } from './access';
import type { AgentRunner } from './agent';
import { type BrokerRunner, parseJson } from './broker';
import { brokerRequest } from './broker-http';

/**
 * Gateways (issue 14) through the product's own interfaces: the broker's routes API as an admin
 * uses it, `trellis set` and `trellis status --json` on the agents, and what the kernel and
 * WireGuard of a device hold for a routed prefix.
 */

export const ROUTES_PATH = '/api/v1/routes';
const OWNER_EMAIL = 'admin@trellis.local';
const OWNER_PASSWORD = 'gateway-lab-owner-password';

/** The account owner's API session: resets the owner's password (admin CLI), then signs in. */
export class RoutesApi {
  private constructor(
    private readonly broker: BrokerRunner,
    private readonly token: string,
  ) {}

  static async signIn(broker: BrokerRunner): Promise<RoutesApi> {
    await broker.admin([
      ...['accounts', 'reset-owner', '--data-dir', broker.dataDir, '--account', LAB_ACCOUNT],
      ...['--password', OWNER_PASSWORD],
    ]);
    const login = await brokerRequest(broker, 'POST', API_PATHS.login, {
      body: { email: OWNER_EMAIL, password: OWNER_PASSWORD },
    });
    if (login.status !== 200) throw new Error(`login: HTTP ${login.status} ${JSON.stringify(login.json)}`);
    return new RoutesApi(broker, LoginResponse.parse(login.json).token);
  }

  /** GET /api/v1/routes. */
  async list(): Promise<RouteRow[]> {
    const r = await brokerRequest(this.broker, 'GET', ROUTES_PATH, { token: this.token });
    if (r.status !== 200) throw new Error(`GET ${ROUTES_PATH}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return parseJson(JSON.stringify(r.json), RouteList, `GET ${ROUTES_PATH}`).routes;
  }

  /** The row of `device`'s `prefix`, or null. */
  async row(device: string, prefix: string): Promise<RouteRow | null> {
    return (await this.list()).find((r) => r.deviceName === device && r.prefix === prefix) ?? null;
  }

  /**
   * PUT /api/v1/devices/:name/routes: the device's approved prefixes become exactly `approved`.
   * Answers the device's rows (a RouteList).
   */
  async setApproved(device: string, approved: string[]): Promise<RouteRow[]> {
    const path = `${API_PATHS.devices}/${encodeURIComponent(device)}/routes`;
    const r = await brokerRequest(this.broker, 'PUT', path, { token: this.token, body: { approved } });
    if (r.status !== 200) throw new Error(`PUT ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return parseJson(JSON.stringify(r.json), RouteList, `PUT ${path}`).routes;
  }

  /** Waits until the broker lists `device`'s `prefix` and `check` holds for the row. */
  waitRow(device: string, prefix: string, check: (r: RouteRow) => boolean, what: string): Promise<RouteRow> {
    return waitFor(
      async () => {
        const r = await this.row(device, prefix);
        return r && check(r) ? r : null;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: `${device} ${prefix}: ${what}` },
    );
  }
}

/** `trellis set FLAGS…` on the agent (e.g. `['--advertise-routes', '192.168.1.0/24']`). */
export async function trellisSet(agent: AgentRunner, flags: string[]): Promise<string> {
  return agent.cli(['set', ...flags]);
}

/** StatusResponse.gateway; throws when the agent reports none (an agent without gateways). */
export async function gatewayStatus(agent: AgentRunner): Promise<GatewayStatus> {
  const s = await agent.status();
  if (!s.gateway) throw new Error(`${agent.name}: trellis status --json has no gateway section`);
  return s.gateway;
}

/** The status row of another device's `prefix` on `agent`, or null when it has none. */
export async function routeStatus(
  agent: AgentRunner,
  prefix: string,
): Promise<GatewayStatus['routes'][number] | null> {
  return (await gatewayStatus(agent)).routes.find((r) => r.prefix === prefix) ?? null;
}

/** The main table's routes for exactly `prefix` in `ns` (`ip -j route show PREFIX`), as `dev` names. */
export async function kernelRouteDevs(ns: Namespace, prefix: string): Promise<string[]> {
  const { stdout } = await ns.exec(['ip', '-j', 'route', 'show', prefix]);
  const routes = (stdout.trim() === '' ? [] : JSON.parse(stdout)) as Array<{ dst?: string; dev?: string }>;
  return routes.filter((r) => r.dst === prefix).map((r) => r.dev ?? '?');
}

/** Which device would carry a packet to `address` (`ip -j route get`). */
export async function routeGetDev(ns: Namespace, address: string): Promise<string | null> {
  const { stdout } = await ns.exec(['ip', '-j', 'route', 'get', address]);
  const r = JSON.parse(stdout) as Array<{ dev?: string }>;
  return r[0]?.dev ?? null;
}

/** The WireGuard peers (public keys) of `agent` whose allowed IPs contain exactly `prefix`. */
export async function wgPeersWithPrefix(agent: AgentRunner, prefix: string): Promise<string[]> {
  return (await agent.wg()).peers.filter((p) => p.allowedIps.includes(prefix)).map((p) => p.publicKey);
}

/**
 * Everything a client holds for a routed prefix, for test failure messages: the status row, the
 * kernel route and which WireGuard peers carry it.
 */
export async function describeRoute(agent: AgentRunner, prefix: string): Promise<string> {
  const safe = async <T>(f: () => Promise<T>) => f().catch((e: Error) => `(${e.message.split('\n')[0]})`);
  const row = await safe(() => routeStatus(agent, prefix));
  const kernel = await safe(() => kernelRouteDevs(agent.device.ns, prefix));
  const wg = await safe(() => wgPeersWithPrefix(agent, prefix));
  return `${agent.name} ${prefix}: status ${JSON.stringify(row)}, kernel ${JSON.stringify(kernel)}, wg peers ${JSON.stringify(wg)}`;
}
